"""Training loop, seeding, device and profile resolution."""

import pytest
import torch
import torch.nn.functional as F

import regkit.workbook as wb


def small_run(seed):
    generator = wb.seed_everything(seed)
    x = torch.randn(64, 5, generator=generator)
    y = (x[:, 0] > 0).long()
    model = wb.mlp(5, 16, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return wb.train(
        model,
        opt,
        x,
        y,
        epochs=15,
        batch_size=16,
        generator=generator,
        progress=False,
        loss_fn=lambda logits, labels, index: F.cross_entropy(logits, labels),
        evaluate=lambda epoch: {"accuracy": wb.accuracy(model(x), y)},
    )


def test_same_seed_same_history_bit_for_bit():
    assert small_run(0) == small_run(0)
    assert small_run(0) != small_run(1)


def test_training_learns():
    history = small_run(0)
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["accuracy"] > 0.9


def test_loss_fn_receives_batch_positions():
    seen = []
    x, y = torch.randn(10, 3), torch.zeros(10, dtype=torch.long)
    model = wb.mlp(3, 2)

    def loss_fn(logits, labels, index):
        seen.append(index.clone())
        assert torch.equal(labels, y[index])
        return F.cross_entropy(logits, labels)

    wb.train(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        x,
        y,
        epochs=2,
        batch_size=4,
        loss_fn=loss_fn,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    epoch_one = torch.cat(seen[:3]).sort().values
    assert torch.equal(epoch_one, torch.arange(10))


def test_profile_environment_override(monkeypatch):
    profiles = {"quick": {"n": 1}, "full": {"n": 2}}
    monkeypatch.delenv("REGKIT_PROFILE", raising=False)
    assert wb.resolve_profile("full", profiles) == ("full", {"n": 2})
    monkeypatch.setenv("REGKIT_PROFILE", "quick")
    assert wb.resolve_profile("full", profiles) == ("quick", {"n": 1})
    monkeypatch.setenv("REGKIT_PROFILE", "huge")
    with pytest.raises(ValueError, match="profile"):
        wb.resolve_profile("full", profiles)


def test_device_resolution():
    assert wb.resolve_device("cpu") == torch.device("cpu")
    assert wb.resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            wb.resolve_device("cuda")


def test_start_writes_to_scratch_by_default(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.setenv("REGKIT_PROFILE", "quick")
    paper = {"title": "T", "arxiv": "0000.00000", "seeds": []}
    run = wb.start("toy", {"quick": {}, "full": {}}, profile="full", device="cpu", paper=paper)
    assert run.profile == "quick" and run.output_dir == tmp_path / "scratch" / "quick" / "toy"


def test_job_processes_are_the_runs_share_of_the_cores_on_the_cpu_only(tmp_path):
    run = wb.start("elr", {"quick": {}, "full": {}}, profile="quick", device="cpu", output_dir=tmp_path)
    assert run.processes == torch.get_num_threads()
    run.device = torch.device("cuda")  # not used: the property only reads the device type
    assert run.processes == 1


def test_start_reads_the_paper_from_the_registry(tmp_path):
    run = wb.start("elr", {"quick": {}, "full": {}}, profile="quick", device="cpu", output_dir=tmp_path)
    assert run.ledger.paper["arxiv"] == wb.registry.METHODS["elr"].paper.arxiv
    with pytest.raises(ValueError, match="not registered"):
        wb.start("no_such_method", {"quick": {}, "full": {}}, profile="quick", device="cpu", output_dir=tmp_path)


def _ce(logits, labels, index):
    return F.cross_entropy(logits, labels)


def test_bad_training_arguments():
    model = wb.mlp(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
    ok = {"epochs": 1, "batch_size": 2, "loss_fn": _ce, "generator": torch.Generator(), "progress": False}
    with pytest.raises(ValueError, match="same length"):
        wb.train(model, opt, x, y[:3], **ok)
    for bad, match in [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"loss_fn": None}, "exactly one of loss_fn"),
        ({"batch_loss": lambda *a: None}, "exactly one of loss_fn"),
        ({"on_step": 3}, "on_step"),
        ({"evaluate": "x"}, "evaluate"),
        ({"generator": 0}, "generator"),
        ({"evaluate": lambda epoch: 1.0}, "evaluate must return"),
    ]:
        with pytest.raises(ValueError, match=match):
            wb.train(model, opt, x, y, **{**ok, **bad})


def _steps_run(seed, **hooks):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(22, 3, generator=generator)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(seed)
    model = wb.mlp(3, 8, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    history = wb.train(
        model,
        opt,
        x,
        y,
        epochs=3,
        batch_size=5,
        generator=generator,
        progress=False,
        on_step=lambda step, loss: seen.append((step, loss)),
        **hooks,
    )
    return seen, history, x, y


def test_on_step_sees_every_step_in_order_with_the_batch_loss():
    losses = []

    def loss_fn(logits, labels, index):
        loss = F.cross_entropy(logits, labels)
        losses.append(float(loss.detach()))
        return loss

    seen, history, _, _ = _steps_run(0, loss_fn=loss_fn)
    assert [step for step, _ in seen] == list(range(1, 3 * 5 + 1))  # ceil(22 / 5) = 5 steps per epoch
    assert [loss for _, loss in seen] == losses
    assert all(isinstance(loss, float) for _, loss in seen)
    # the epoch's mean loss is the batch losses weighted by the batch sizes (5, 5, 5, 5, 2)
    weights = [5, 5, 5, 5, 2]
    first = sum(w * loss for w, (_, loss) in zip(weights, seen[:5])) / 22
    assert history[0]["loss"] == pytest.approx(first, rel=1e-6)


def test_a_seed_fixes_the_run_with_hooks():
    a, history_a, _, _ = _steps_run(3, loss_fn=_ce)
    b, history_b, _, _ = _steps_run(3, loss_fn=_ce)
    c, _, _, _ = _steps_run(4, loss_fn=_ce)
    assert a == b and history_a == history_b and a != c


def test_batch_loss_gets_the_model_the_batch_and_the_epoch_from_one():
    calls = []

    def batch_loss(model, xb, yb, index, epoch):
        calls.append((epoch, index.clone()))
        assert model.training
        return F.cross_entropy(model(xb), yb)

    seen, _, x, _ = _steps_run(0, batch_loss=batch_loss)
    assert [epoch for epoch, _ in calls] == [1] * 5 + [2] * 5 + [3] * 5 and len(seen) == 15
    for epoch in (1, 2, 3):  # each epoch visits every example once
        index = torch.cat([i for e, i in calls if e == epoch]).sort().values
        assert torch.equal(index, torch.arange(x.shape[0]))


def test_evaluate_is_the_end_of_epoch_hook():
    events = []

    def loss_fn(logits, labels, index):
        events.append("step")
        return F.cross_entropy(logits, labels)

    def evaluate(epoch):
        events.append(("end", epoch, torch.is_grad_enabled()))
        return None if epoch == 2 else {"metric": float(epoch)}

    _, history, _, _ = _steps_run(0, loss_fn=loss_fn, evaluate=evaluate)
    assert events == (
        ["step"] * 5 + [("end", 1, False)] + ["step"] * 5 + [("end", 2, False)] + ["step"] * 5 + [("end", 3, False)]
    )
    assert [h.get("metric") for h in history] == [1.0, None, 3.0]
    with pytest.raises(TypeError, match="seed"):
        wb.seed_everything(1.5)
