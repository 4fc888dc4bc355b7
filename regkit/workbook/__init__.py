"""Replication plumbing used by the notebooks (never by the methods): profiles, device,
seeding, the training loop, metrics, paired comparisons, figures, the claims ledger, the runner and the report."""

from regkit.workbook.claims import Ledger, Record, load_record
from regkit.workbook.device import resolve_device
from regkit.workbook.evidence import Evidence
from regkit.workbook.figures import (
    annotated_heatmaps,
    arm_errorbars,
    image_grid,
    line_grid,
    save_figure,
    set_theme,
    stream_curves,
    subplots,
)
from regkit.workbook.metrics import (
    accuracy,
    aurc,
    collapsed_fraction,
    expected_calibration_error,
    label_probability,
    nll,
    noisy_label_fractions,
    optimizer_state_bytes,
    parameter_norm,
    pass_at_k,
    relative_error,
    reliability_diagram,
    top_k_accuracy,
)
from regkit.workbook.paired import paired_evidence, paired_samples, paired_table, seeds_needed
from regkit.workbook.seeding import seed_everything
from regkit.workbook.session import Session, resolve_profile, start
from regkit.workbook.testbeds.models import mlp
from regkit.workbook.training import train

__all__ = [
    "Evidence",
    "Ledger",
    "Record",
    "Session",
    "accuracy",
    "annotated_heatmaps",
    "arm_errorbars",
    "aurc",
    "collapsed_fraction",
    "expected_calibration_error",
    "label_probability",
    "image_grid",
    "line_grid",
    "load_record",
    "mlp",
    "nll",
    "noisy_label_fractions",
    "optimizer_state_bytes",
    "paired_evidence",
    "paired_samples",
    "paired_table",
    "parameter_norm",
    "pass_at_k",
    "relative_error",
    "reliability_diagram",
    "resolve_device",
    "resolve_profile",
    "save_figure",
    "seed_everything",
    "seeds_needed",
    "set_theme",
    "stream_curves",
    "start",
    "subplots",
    "top_k_accuracy",
    "train",
]
