"""The adaptation interface and SourceOnly / BNAdapt / TENT / EATA against hand-written steps."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from _tta_models import DT
from _tta_models import batch as _batch
from _tta_models import bn_model as _bn_model
from _tta_models import entropy as _entropy
from _tta_models import same as _same
from _tta_models import state as _state
from torch import nn

from regkit.tta import EATA, BNAdapt, SourceOnly, Tent, fisher_diagonal


def test_source_only_is_the_eval_model_and_bn_adapt_uses_batch_statistics():
    model, x = _bn_model(), _batch()
    assert torch.equal(SourceOnly(model)(x), model(x))
    bn = copy.deepcopy(model).train()  # train mode: BatchNorm with the batch's own statistics
    assert torch.allclose(BNAdapt(model)(x), bn(x), atol=1e-12)
    assert not torch.allclose(BNAdapt(model)(x), model(x), atol=1e-3)


def test_tent_one_step_equals_a_hand_written_sgd_step_on_bn_affine_only():
    model, x, lr = _bn_model(), _batch(), 0.5
    tent = Tent(model, lr=lr, momentum=0.0)
    before = copy.deepcopy(tent.model.state_dict())
    logits = tent(x)
    # by hand: batch statistics, the mean softmax entropy, its gradient in the BN scale and shift, one SGD step
    reference = copy.deepcopy(model).train()
    expected_logits = reference(x)
    loss = _entropy(expected_logits).mean()
    gw, gb = torch.autograd.grad(loss, [reference[1].weight, reference[1].bias])
    assert torch.allclose(logits, expected_logits.detach(), atol=1e-12)  # the pre-update forward
    after = tent.model.state_dict()
    assert torch.allclose(after["1.weight"], model[1].weight - lr * gw, atol=1e-12)
    assert torch.allclose(after["1.bias"], model[1].bias - lr * gb, atol=1e-12)
    assert not torch.equal(after["1.weight"], before["1.weight"])
    for name in ("0.weight", "0.bias", "4.weight", "4.bias"):
        assert torch.equal(after[name], before[name])
    assert int(tent.num_backward) == 8 and int(tent.num_updates) == 1 and int(tent.num_samples) == 8
    # the source model is untouched
    assert torch.equal(model[1].weight, _bn_model()[1].weight) and model[1].running_mean is not None


def test_adapt_all_updates_every_parameter_and_steps_repeat():
    model, x = _bn_model(), _batch()
    tent = Tent(model, adapt="all", lr=0.1, momentum=0.0, steps=3)
    tent(x)
    for name, value in tent.model.state_dict().items():
        # the conv bias right before BatchNorm has zero gradient (batch normalization removes it)
        assert torch.equal(value, model.state_dict()[name]) == (name == "0.bias"), name
    assert int(tent.num_updates) == 3 and int(tent.num_backward) == 24


def test_episodic_reset_restores_model_optimizer_and_buffers_exactly():
    model, x = _bn_model(), _batch()
    eata = EATA(model, 4, e_margin=math.log(4), d_margin=1.0, fisher_data=_batch(16, seed=2), lr=0.2, episodic=False)
    saved = _state(eata)
    eata(x)  # saves the state (the source state), then adapts
    eata(_batch(seed=3))
    eata(_batch(seed=4))
    assert not _same(_state(eata), saved)
    assert eata.optimizer.state  # SGD momentum buffers exist
    eata.reset()
    assert _same(_state(eata), saved)
    # episodic: every batch adapts from the saved state, so repeated batches give identical predictions
    episodic = Tent(model, lr=0.5, episodic=True)
    first = episodic(x)
    start = _state(episodic)
    assert torch.equal(episodic(x), first)
    assert _same(_state(episodic), start)


def _eata_by_hand(model, batches, e0, eps, beta, lr, fisher_batches):
    """EATA with plain SGD written out from eata.py: selection, weights, Fisher penalty and moving average."""
    model = copy.deepcopy(model).train()
    params = [model[1].weight, model[1].bias]
    fisher = [torch.zeros_like(p) for p in params]
    for xb in fisher_batches:
        out = model(xb)
        grads = torch.autograd.grad(F.cross_entropy(out, out.argmax(1)), params)
        fisher = [f + g**2 for f, g in zip(fisher, grads)]
    fisher = [f / len(fisher_batches) for f in fisher]
    anchors = [p.detach().clone() for p in params]
    average, outputs, counts = None, [], []
    for xb in batches:
        out = model(xb)
        ent = _entropy(out)
        probs = out.detach().softmax(1)
        keep = []
        for i in range(len(xb)):
            reliable = float(ent[i].detach()) < e0
            redundant = average is not None and float(F.cosine_similarity(probs[i], average, dim=0)) >= eps
            keep.append(reliable and not redundant)
        idx = [i for i, k in enumerate(keep) if k]
        counts.append(len(idx))
        if idx:
            loss = sum(ent[i] / math.exp(float(ent[i].detach()) - e0) for i in idx) / len(idx)
            loss = loss + beta * sum((f * (p - a) ** 2).sum() for f, p, a in zip(fisher, params, anchors))
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p -= lr * g
            kept_mean = probs[idx].mean(0)
            average = kept_mean if average is None else 0.9 * average + 0.1 * kept_mean
        outputs.append(out.detach())
    return model, outputs, counts, fisher, average


def test_eata_matches_a_hand_written_implementation():
    model = _bn_model(seed=5)
    batches = [_batch(10, seed=s, shift=0.3) for s in range(6, 10)]
    fisher_data = _batch(12, seed=11)
    e0, eps, beta, lr = 1.2, 0.995, 50.0, 0.3
    eata = EATA(model, 4, e_margin=e0, d_margin=eps, fisher_data=fisher_data, fisher_batch_size=5,
                fisher_alpha=beta, lr=lr, momentum=0.0)  # fmt: skip
    ours = [eata(x) for x in batches]
    ref_model, ref_outputs, counts, ref_fisher, ref_average = _eata_by_hand(
        model, batches, e0, eps, beta, lr, list(fisher_data.split(5))
    )
    assert 0 < sum(counts) < 40 and sum(c > 0 for c in counts) >= 2  # selection and updates both exercised
    for a, b in zip(ours, ref_outputs):
        assert torch.allclose(a, b, atol=1e-10)
    assert torch.allclose(eata.fisher_0, ref_fisher[0], atol=1e-12)
    assert torch.allclose(eata.model[1].weight, ref_model[1].weight, atol=1e-10)
    assert torch.allclose(eata.model[1].bias, ref_model[1].bias, atol=1e-10)
    assert torch.allclose(eata.prob_average, ref_average, atol=1e-10)
    assert int(eata.num_selected) == sum(counts) == int(eata.num_backward)
    assert int(eata.num_updates) == sum(c > 0 for c in counts)


def test_fisher_diagonal_of_a_linear_model_by_hand():
    # f(x) = W x with W (2, 2); CE against argmax: ∂/∂W = (softmax − onehot) xᵀ, mean over the batch, squared
    layer = nn.Linear(2, 2, bias=False).to(DT)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 2.0]], dtype=DT))
    xs = [torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=DT), torch.tensor([[2.0, 1.0], [-1.0, 1.0]], dtype=DT)]
    expected = torch.zeros(2, 2, dtype=DT)
    for x in xs:
        logits = x @ layer.weight.detach().T
        residual = logits.softmax(1) - F.one_hot(logits.argmax(1), 2).to(DT)
        expected += (residual.T @ x / len(x)) ** 2
    (ours,) = fisher_diagonal(layer, [layer.weight], xs)
    assert torch.allclose(ours, expected / 2, atol=1e-14)


def test_a_bad_batch_raises_and_leaves_the_state_unchanged():
    model = _bn_model()
    eata = EATA(model, 4, e_margin=math.log(4), lr=0.2)
    eata(_batch())
    saved = _state(eata)
    bad_x = _batch()
    bad_x[0, 0, 0, 0] = math.nan
    bad = [bad_x, _batch()[:, :, :3], _batch()[:1], _batch().float()[..., 0], _batch().to(torch.int64)]
    for x in bad:
        with pytest.raises(ValueError, match="x"):
            eata(x)
        assert _same(_state(eata), saved)
    # a per-sample shape the model rejects on the very first batch
    fresh = Tent(model)
    with pytest.raises(ValueError, match="x"):
        fresh(torch.zeros(4, 2, 4, 4, dtype=DT))
    assert int(fresh.num_samples) == 0 and fresh.input_shape is None


def test_wrong_number_of_classes_raises_before_any_update():
    eata = EATA(_bn_model(classes=4), 5, e_margin=1.0)
    before = _state(eata)
    with pytest.raises(ValueError, match="num_classes"):
        eata(_batch())
    assert _same(_state(eata), before)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: Tent(nn.Sequential(nn.Flatten(), nn.Linear(16, 4))), "adapt"),
        (lambda: Tent(nn.Sequential(nn.Flatten(), nn.Linear(16, 4)), adapt="all"), "batch_stats"),
        (lambda: BNAdapt(nn.Sequential(nn.Flatten(), nn.Linear(16, 4))), "batch_stats"),
        (lambda: Tent(_bn_model(), adapt="bias"), "adapt"),
        (lambda: Tent(_bn_model(), optimizer="lbfgs"), "optimizer"),
        (lambda: Tent(_bn_model(), lr=0.0), "lr"),
        (lambda: Tent(_bn_model(), momentum=1.0), "momentum"),
        (lambda: Tent(_bn_model(), steps=0), "steps"),
        (lambda: Tent("model"), "model"),
        (lambda: EATA(_bn_model(), 4, e_margin=0.0), "e_margin"),
        (lambda: EATA(_bn_model(), 4, e_margin=2.0), "e_margin"),
        (lambda: EATA(_bn_model(), 4, d_margin=0.0), "d_margin"),
        (lambda: EATA(_bn_model(), 4, d_margin=1.1), "d_margin"),
        (lambda: EATA(_bn_model(), 4, fisher_alpha=-1.0), "fisher_alpha"),
        (lambda: EATA(_bn_model(), 1), "num_classes"),
        (lambda: EATA(_bn_model(), 4, adapt="none"), "adapt"),
        (lambda: EATA(_bn_model(), 4, fisher_data=torch.zeros(8, 2, 4, 4, dtype=DT)), "fisher_data"),
        (lambda: EATA(_bn_model(), 4, fisher_data=_batch(), fisher_batch_size=1), "fisher_batch_size"),
        (lambda: fisher_diagonal(_bn_model(), [], [_batch()]), "params"),
    ],
)
def test_bad_arguments_name_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()
