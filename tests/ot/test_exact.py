"""Exact (assignment) OT: its input checks; its values are the reference of the other OT tests."""

import pytest

from regkit.ot import (
    exact_ot,
)


def test_exact_ot_rejects_rectangular_costs(clouds):
    _, _, C = clouds(5, 4)
    with pytest.raises(ValueError, match="square"):
        exact_ot(C)
