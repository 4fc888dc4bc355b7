"""The shared solver result type."""

import dataclasses
import math

import pytest
import torch

from regkit.solvers import SolverResult


def test_result_is_frozen_and_reports_its_last_entries():
    result = SolverResult(torch.zeros(3), 2, True, [3.0, 2.0, 1.0], [1.0, 0.1, 1e-9])
    assert result.objective == 1.0 and result.error == 1e-9
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.n_iter = 5


def test_a_result_without_objectives_has_a_nan_objective():
    assert math.isnan(SolverResult(torch.zeros(1), 0, False, [], [1.0]).objective)
