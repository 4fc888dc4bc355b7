"""Notebook plumbing (regkit.workbook.sweeps), the metrics the notebooks moved into the workbook, and the
testbeds of lion_constrained (box least squares) and pass_at_n_loss (ambiguous clusters)."""

import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

import regkit.workbook as wb
from regkit.optim import Lion
from regkit.workbook.sweeps import (
    back_to_back_timings,
    fit_steps,
    per_seed,
    run_jobs,
    train_logged,
)
from regkit.workbook.testbeds import ambiguous_clusters, box_lsq


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 3, generator=g)
    return x, (x[:, 0] > 0).long()


def test_train_logged_logs_before_training_every_k_epochs_and_the_last():
    x, y = _problem()
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    rows = train_logged(
        model,
        torch.optim.SGD(model.parameters(), lr=0.5),
        x,
        y,
        epochs=7,
        every=3,
        loss_fn=lambda z, t, index: F.cross_entropy(z, t),
        generator=torch.Generator().manual_seed(0),
        log=lambda: {"acc": wb.accuracy(model(x), y), "grad": torch.is_grad_enabled()},
        arm="a",
    )
    assert [r["epoch"] for r in rows] == [0, 3, 6, 7]
    assert all(r["arm"] == "a" and not r["grad"] for r in rows)
    assert rows[-1]["acc"] > rows[0]["acc"]


def test_train_logged_full_batch_equals_hand_written_full_batch_loop():
    x, y = _problem(1)
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    train_logged(
        a,
        torch.optim.SGD(a.parameters(), lr=0.1),
        x,
        y,
        epochs=5,
        log=dict,
        loss_fn=lambda z, t, index: F.cross_entropy(z, t),
        generator=torch.Generator().manual_seed(0),
    )
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(b(x), y).backward()
        opt.step()
    for p, q in zip(a.parameters(), b.parameters()):  # same full-batch steps, up to the summation order
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_train_logged_rejects_bad_every():
    x, y = _problem()
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="every"):
        train_logged(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            x,
            y,
            epochs=1,
            every=0,
            log=dict,
            loss_fn=lambda z, t, i: F.cross_entropy(z, t),
            generator=torch.Generator(),
        )


def test_fit_steps_matches_a_hand_written_loop():
    x, y = _problem(2)
    batches = torch.randint(0, 40, (6, 8), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    values = fit_steps(lambda i: F.cross_entropy(a(x[i]), y[i]), torch.optim.Adam(a.parameters(), lr=0.1), batches)
    opt, expected = torch.optim.Adam(b.parameters(), lr=0.1), []
    for i in batches:
        loss = F.cross_entropy(b(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        expected.append(float(loss.detach()))
    assert values.shape == (6,) and values.tolist() == expected


def test_back_to_back_timings_alternate_and_time_every_step():
    calls = []
    rows = back_to_back_timings({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, warmup=True)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert [r["repeat"] for r in rows] == [0, 1, 2] and all(r["a_s"] >= 0 and r["b_s"] >= 0 for r in rows)
    with pytest.raises(ValueError):
        back_to_back_timings({}, 1)


def test_run_jobs_and_per_seed():
    frame = run_jobs(
        lambda arm, s: [{"arm": arm, "seed": s, "v": 10 * s}] if arm == "x" else {"arm": arm, "seed": s, "v": -s},
        [("x", 2), ("x", 1), ("y", 1)],
    )
    assert frame.arm.tolist() == ["x", "x", "y"]
    table = frame.set_index(["arm", "seed"]).sort_index()
    assert per_seed(table, "x", [2, 1], "v") == [20, 10]
    assert per_seed(table.v, "x", [1, 2], scale=0.5) == [5.0, 10.0]
    with pytest.raises(KeyError):
        per_seed(table, "x", [3], "v")
    rows = [(2, 0.1, 0, 20), (1, 0.1, 1, 11), (1, 0.1, 0, 10), (2, 0.1, 1, 21)]  # not lexsorted
    unsorted = pd.DataFrame(rows, columns=["n", "gamma", "seed", "v"]).set_index(["n", "gamma", "seed"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PerformanceWarning for a key past the lexsort depth
        assert per_seed(unsorted, (1, 0.1), [0, 1], "v") == [10, 11]


def _fit_once(s: int, width: int) -> dict:
    """A job: a seeded small training run, reporting its result and its process's torch threads."""
    import os

    torch.manual_seed(s)
    model = torch.nn.Linear(width, 3)
    x, y = torch.randn(64, width), torch.randint(0, 3, (64,))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return {
        "seed": s,
        "loss": F.cross_entropy(model(x), y).item(),
        "threads": torch.get_num_threads(),
        "pid": os.getpid(),
    }


def test_run_jobs_in_processes_match_one_process():
    jobs = [(s, 8 + s) for s in range(4)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        inline = run_jobs(_fit_once, jobs)
    finally:
        torch.set_num_threads(threads)
    parallel = run_jobs(_fit_once, jobs, processes=2, desc="jobs")
    assert parallel.seed.tolist() == [0, 1, 2, 3]  # job order, whichever process finished first
    assert parallel.loss.tolist() == inline.loss.tolist()  # bit for bit: one thread each
    assert set(parallel.threads) == {1} and os.getpid() not in set(parallel.pid)
    assert run_jobs(_fit_once, jobs[:1], processes=8).loss.tolist() == inline.loss.tolist()[:1]  # ≤ one per job
    with pytest.raises(ValueError, match="processes"):
        run_jobs(_fit_once, jobs, processes=0)


def test_new_metrics_against_direct_computations():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(50, 4, generator=g), torch.randint(0, 4, (50,), generator=g)
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    assert wb.label_probability(logits, labels) == pytest.approx(p[np.arange(50), labels.numpy()].mean(), rel=1e-6)
    a, b = torch.tensor([3.0, 4.0]), torch.tensor([0.0, 4.0])
    assert wb.relative_error(a, b) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="shape"):
        wb.relative_error(a, b[:1])
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(2.0)
    assert wb.parameter_norm(model) == pytest.approx(3.0)


def test_collapsed_fraction_counts_losses_rounded_to_zero():
    logits = torch.tensor([[0.0, 200.0], [0.0, 5.0], [0.0, 200.0]])  # float32: p_y of the first rounds to 1
    losses = F.cross_entropy(logits, torch.tensor([1, 1, 0]), reduction="none")
    assert wb.collapsed_fraction(losses) == pytest.approx(1 / 3)
    assert wb.collapsed_fraction(F.cross_entropy(logits.double()[:1] / 10, torch.tensor([1]), reduction="none")) == 0


def test_optimizer_state_bytes_lion_half_of_adamw():
    model = torch.nn.Linear(10, 5, bias=False)
    states = {}
    for name, opt in {
        "lion": Lion(model.parameters(), lr=1e-3),
        "adamw": torch.optim.AdamW(model.parameters()),
    }.items():
        model(torch.randn(2, 10)).sum().backward()
        opt.step()
        states[name] = wb.optimizer_state_bytes(opt)
    assert states == {"lion": 50 * 4, "adamw": 2 * 50 * 4}  # momentum vs two moments; the step counter is left out


def test_box_least_squares_descent_reaches_the_scipy_box_solution():
    A, b = box_lsq.problem(0, rows=30, dim=5)
    assert box_lsq.unconstrained_sup_norm(A, b) > 1.0
    x_box = box_lsq.box_solution(A, b, 1.0)
    # independent reference: L-BFGS-B on the same box
    ref = minimize(
        lambda x: 0.5 * np.sum((A.numpy() @ x - b.numpy()) ** 2),
        np.zeros(5),
        method="L-BFGS-B",
        jac=lambda x: A.numpy().T @ (A.numpy() @ x - b.numpy()),
        bounds=[(-1, 1)] * 5,
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    np.testing.assert_allclose(x_box.numpy(), ref.x, atol=1e-5)
    x, trace = box_lsq.descend(A, b, lambda p: Lion(p, lr=20 / 3000, weight_decay=1.0), 3000, trace_every=1000)
    assert [t["step"] for t in trace] == [0, 1000, 2000, 2999]
    row = box_lsq.compare(A, b, x, x_box)
    assert row["distance_to_box_solution"] < 0.02 and row["sup_norm"] <= 1.0 + 1e-2
    assert row["objective_gap"] == pytest.approx(row["objective"] / row["box_objective"] - 1)
    assert box_lsq.objective(A, b, x_box) == pytest.approx(row["box_objective"])


def test_ambiguous_clusters_oracle_and_calibration():
    means, data = ambiguous_clusters.problem(5, 0.0, 0, dim=20, n_train=10, n_test=50)
    assert ambiguous_clusters.oracle_accuracy(means, data) == 1.0  # no noise: the nearest mean is the class
    sigma = ambiguous_clusters.calibrate_noise(5, 0, grid=[0.01, 1.0, 100.0], dim=20, n_train=10, n_test=400)
    assert sigma == 1.0 or sigma == 100.0
    accs = {
        s: ambiguous_clusters.oracle_accuracy(*ambiguous_clusters.problem(5, s, 0, dim=20, n_train=10, n_test=400))
        for s in (0.01, 1.0, 100.0)
    }
    assert sigma == min(accs, key=lambda s: abs(accs[s] - 0.5))
