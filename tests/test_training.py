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
        model, opt, x, y, epochs=15, batch_size=16, generator=generator, progress=False,
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

    wb.train(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, epochs=2, batch_size=4,
             loss_fn=loss_fn, generator=torch.Generator().manual_seed(0), progress=False)
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


def test_start_reads_the_paper_from_the_registry(tmp_path):
    run = wb.start("elr", {"quick": {}, "full": {}}, profile="quick", device="cpu", output_dir=tmp_path)
    assert run.ledger.paper["arxiv"] == wb.registry.METHODS["elr"].paper.arxiv
    with pytest.raises(ValueError, match="not registered"):
        wb.start("no_such_method", {"quick": {}, "full": {}}, profile="quick", device="cpu", output_dir=tmp_path)


def test_bad_training_arguments():
    model = wb.mlp(3, 2)
    with pytest.raises(ValueError, match="same length"):
        wb.train(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.randn(4, 3), torch.zeros(3, dtype=torch.long),
                 epochs=1, batch_size=2, loss_fn=None, generator=torch.Generator(), progress=False)
    with pytest.raises(TypeError, match="seed"):
        wb.seed_everything(1.5)
