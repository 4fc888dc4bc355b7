"""The cut_cross_entropy measurements (regkit.workbook.testbeds.ce_study) against direct computations."""

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from regkit.workbook.testbeds import ce_study
from regkit.workbook.testbeds.linear_ce import make_problem


def test_gradient_agreement_against_autograd_of_the_materialized_logits():
    hidden, weight, labels = make_problem(64, 300, 16, seed=0)
    table = ce_study.gradient_agreement(("naive", "regkit"), hidden, weight, labels)
    assert table.loc["naive", ["rel_error_loss", "rel_error_hidden", "rel_error_weight"]].tolist() == [0, 0, 0]
    assert table.loc["regkit"].drop("loss").max() < 1e-5
    h, w = hidden.detach().double(), weight.detach().double()
    assert table.loc["regkit", "loss"] == pytest.approx(float(F.cross_entropy(h @ w.T, labels)), rel=1e-5)


def test_skip_reasons():
    cpu = torch.device("cpu")
    assert ce_study.skip_reason("naive", 1024, 1024, cpu, available=2**40) is None
    assert "GiB" in ce_study.skip_reason("naive", 8192, 262144, cpu, available=2**30)
    assert "CPU" in ce_study.skip_reason("torch", 8, 65536, cpu, available=2**40)
    assert ce_study.skip_reason("torch", 8, 32768, cpu, available=2**40) is None
    assert ce_study.skip_reason("regkit", 8192, 262144, cpu, available=1) is None


def test_ratios_skip_variants_that_did_not_run():
    sweep = pd.DataFrame(
        [
            {"n": 1, "vocab": 2, "variant": "naive", "peak_extra_bytes": 100.0, "first_seconds": 2.0},
            {"n": 1, "vocab": 2, "variant": "regkit", "peak_extra_bytes": 10.0, "first_seconds": 3.0},
            {"n": 1, "vocab": 2, "variant": "torch", "peak_extra_bytes": float("nan"), "first_seconds": float("nan")},
        ]
    )
    table = ce_study.ratios(sweep)
    assert table.to_dict("records") == [{"n": 1, "vocab": 2, "versus": "naive", "memory_ratio": 0.1, "time_ratio": 1.5}]


def test_memory_sweep_columns_and_skips(monkeypatch):
    calls = []
    monkeypatch.setattr(
        ce_study,
        "measure_in_fresh_process",
        lambda setup, **kw: calls.append(kw) or {"peak_extra_bytes": 2.0**20, "first_seconds": 0.1},
    )
    sweep = ce_study.memory_sweep([(4, 65536)], ("regkit", "torch"), dim=8, device=torch.device("cpu"), seed=3)
    assert calls == [{"variant": "regkit", "n": 4, "vocab": 65536, "dim": 8, "device": "cpu", "seed": 3}]
    assert sweep.peak_extra_mib.tolist()[0] == 1.0 and "skipped" in sweep.error.tolist()[1]
    assert sweep.gradient_mib.tolist() == [(4 + 65536) * 8 * 4 / 2**20] * 2


def test_tiny_lm_shapes():
    model = ce_study.TinyLM(50, width=8)
    assert model(torch.tensor([[1, 2, 3]])).shape == (1, 3, 8) and model.classifier.shape == (50, 8)


def test_filtering_table_exact_at_zero_threshold_and_skips_at_a_large_one():
    g = torch.Generator().manual_seed(0)
    hidden = (10 * torch.randn(256, 8, generator=g)).requires_grad_()
    weight = torch.randn(1024, 8, generator=g).requires_grad_()
    labels = torch.randint(0, 1024, (256,), generator=g)
    table = ce_study.filtering_table(
        hidden, weight, labels, {"0": 0.0, "big": 0.5}, chunk_size=128, token_chunk_size=32
    ).set_index("eps")
    assert table.loc["0", "skipped_fraction"] == 0 and table.loc["0", "rel_error_hidden"] == 0
    assert table.loc["big", "skipped_fraction"] > 0
