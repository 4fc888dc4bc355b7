"""CoTTA and RMT against hand-written mean-teacher loops; the EMA update, stochastic restore and the default
augmentation against closed forms and counts."""

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

from regkit.tta import RMT, CoTTA, Tent, cotta_augment, ema_update_, stochastic_restore_


def _noise_augment(x, generator):
    """A cheap augmentation whose draws a reference can repeat: x + 0.3 · N(0, 1) from the generator."""
    noise = torch.randn(tuple(x.shape), generator=generator, dtype=torch.float64)
    return x + 0.3 * noise.to(x.dtype)


class _Recorder:
    """An augmentation that records its outputs."""

    def __init__(self):
        self.outputs = []

    def __call__(self, x, generator):
        out = _noise_augment(x, generator)
        self.outputs.append(out)
        return out


def _sgd_step(model, loss, lr):
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= lr * g


def _ema(teacher, student, momentum):
    with torch.no_grad():
        for t, s in zip(teacher.parameters(), student.parameters()):
            t.copy_(momentum * t + (1 - momentum) * s)


def _assert_matches(method, outputs, student, teacher, reference_outputs):
    """The method's outputs, student and teacher equal the hand-written reference's."""
    for a, b in zip(outputs, reference_outputs, strict=True):
        assert torch.allclose(a, b, atol=1e-10)
    for ours, theirs in ((method.model, student), (method.teacher, teacher)):
        for name, p in theirs.named_parameters():
            assert torch.allclose(ours.get_parameter(name), p, atol=1e-10), name


# ---------------------------------------------------------------------------------------------------- pieces
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ema_update_closed_form_after_k_steps_with_a_frozen_student(dtype):
    gen = torch.Generator().manual_seed(0)
    teacher = [torch.randn(5, 3, generator=gen).to(dtype), torch.randn(4, generator=gen).to(dtype)]
    student = [torch.randn(5, 3, generator=gen).to(dtype), torch.randn(4, generator=gen).to(dtype)]
    start, frozen = [t.clone() for t in teacher], [s.clone() for s in student]
    momentum, k = 0.8, 7
    for _ in range(k):
        ema_update_(teacher, student, momentum)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for t, t0, s, s0 in zip(teacher, start, student, frozen):
        assert torch.allclose(t, momentum**k * t0 + (1 - momentum**k) * s, atol=tol)
        assert torch.equal(s, s0)
        assert not torch.allclose(t, t0, atol=1e-2)


def test_teacher_of_a_frozen_student_parameter_follows_the_closed_form():
    # the conv bias right before BatchNorm (batch statistics) gets exactly zero gradient: the student's copy stays
    # put, so the teacher's copy, moved away from it, must obey t_k = α^k t₀ + (1 − α^k) s
    model, momentum = _bn_model(), 0.7
    rmt = RMT(model, ema_momentum=momentum, optimizer="sgd", lr=0.3, momentum=0.0, augment=_noise_augment)
    with torch.no_grad():
        rmt.teacher[0].bias.add_(1.0)
    t0, s = rmt.teacher[0].bias.clone(), rmt.model[0].bias.clone()
    for k in range(1, 5):
        rmt(_batch(seed=k))
        assert torch.equal(rmt.model[0].bias, s)
        assert torch.allclose(rmt.teacher[0].bias, momentum**k * t0 + (1 - momentum**k) * s, atol=1e-12)
    assert not torch.equal(rmt.model[1].weight, model[1].weight)  # while the rest of the student does move


def test_stochastic_restore_extremes_and_binomial_fraction():
    gen = torch.Generator().manual_seed(1)
    source = [torch.randn(100, 100, dtype=DT, generator=gen), torch.randn(20000, dtype=DT, generator=gen)]
    current = [s + 1.0 for s in source]
    # prob 0: nothing changes and nothing is drawn
    state = gen.get_state()
    params = [c.clone() for c in current]
    assert stochastic_restore_(params, source, 0.0, gen) == 0
    assert all(torch.equal(p, c) for p, c in zip(params, current)) and torch.equal(gen.get_state(), state)
    # prob 1: exactly the source
    params = [c.clone() for c in current]
    assert stochastic_restore_(params, source, 1.0, gen) == 30000
    assert all(torch.equal(p, s) for p, s in zip(params, source))
    # prob 0.3: each entry is either its source value or untouched, and the count is Binomial(n, 0.3)
    params = [c.clone() for c in current]
    restored = stochastic_restore_(params, source, 0.3, gen)
    for p, s, c in zip(params, source, current):
        is_source, untouched = p == s, p == c
        assert bool((is_source ^ untouched).all())
        n = p.numel()
        assert abs(int(is_source.sum()) - 0.3 * n) < 5 * math.sqrt(n * 0.3 * 0.7)  # 5 sigma
    assert restored == sum(int((p == s).sum()) for p, s in zip(params, source))


def test_cotta_augment_is_seeded_and_identity_when_degenerate():
    x = _batch(6, seed=2).expand(6, 2, 4, 4).contiguous()
    a = cotta_augment(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, cotta_augment(x, torch.Generator().manual_seed(3)))
    assert not torch.allclose(a, cotta_augment(x, torch.Generator().manual_seed(4)))
    same = cotta_augment(
        x, torch.Generator(), degrees=0.0, translate=0.0, scale=(1.0, 1.0), contrast=(1.0, 1.0), noise_std=0.0
    )
    assert torch.allclose(same, x, atol=1e-12)
    # contrast only: each image keeps its mean, its deviation from the mean scales by one factor in [0.5, 2]
    c = cotta_augment(
        x, torch.Generator(), degrees=0.0, translate=0.0, scale=(1.0, 1.0), contrast=(0.5, 2.0), noise_std=0.0
    )
    mean_x, mean_c = x.mean(dim=(1, 2, 3), keepdim=True), c.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(mean_x, mean_c, atol=1e-12)
    ratio = (c - mean_c) / (x - mean_x)
    assert torch.allclose(ratio, ratio[:, :1, :1, :1].expand_as(ratio), atol=1e-9)
    assert bool(((ratio >= 0.5 - 1e-9) & (ratio <= 2.0 + 1e-9)).all()) and float(ratio.std()) > 0.01
    # noise only: the difference has the requested standard deviation
    n = cotta_augment(
        x, torch.Generator(), degrees=0.0, translate=0.0, scale=(1.0, 1.0), contrast=(1.0, 1.0), noise_std=0.5
    )
    assert float((n - x).std()) == pytest.approx(0.5, rel=0.15)


def test_cotta_augment_translation_moves_a_blob_by_at_most_the_bound():
    size, bound = 16, 0.125
    coords = torch.arange(size, dtype=DT)
    blob = torch.exp(-((coords[:, None] - 7.5) ** 2 + (coords[None, :] - 7.5) ** 2) / 4.0)
    x = blob.expand(64, 1, size, size).contiguous()
    out = cotta_augment(
        x, torch.Generator().manual_seed(5), degrees=0.0, translate=bound, scale=(1.0, 1.0), contrast=(1.0, 1.0),
        noise_std=0.0,
    )  # fmt: skip

    def centroid(img):
        w = img.squeeze(1)
        return torch.stack([(w.sum(2) * coords).sum(1), (w.sum(1) * coords).sum(1)], 1) / w.sum(dim=(1, 2))[:, None]

    shift = (centroid(out) - centroid(x)).abs()
    assert float(shift.max()) <= bound * size + 0.05
    assert float(shift.max()) > 0.5 * bound * size  # the shifts do use the range
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), rtol=0.02)  # the blob stays inside


# ---------------------------------------------------------------------------------------------------- CoTTA
def _cotta_by_hand(model, batches, *, momentum, restore, threshold, n_aug, lr, seed):
    """CoTTA with plain SGD, written out from qinenergy/cotta cifar/cotta.py (train-mode copies: batch statistics)."""
    student, teacher, anchor = (copy.deepcopy(model).train() for _ in range(3))
    source = [p.detach().clone() for p in model.parameters()]
    gen = torch.Generator().manual_seed(seed)
    outputs, augmented = [], 0
    for x in batches:
        out = student(x)
        with torch.no_grad():
            confidence = anchor(x).softmax(1).max(1)[0].mean(0)
            if confidence < threshold:
                pseudo = torch.stack([teacher(_noise_augment(x, gen)) for _ in range(n_aug)]).mean(0)
                augmented += 1
            else:
                pseudo = teacher(x)
        _sgd_step(student, (-(pseudo.softmax(1) * out.log_softmax(1)).sum(1)).mean(0), lr)
        _ema(teacher, student, momentum)
        with torch.no_grad():
            for p, s in zip(student.parameters(), source):
                mask = (torch.rand(tuple(p.shape), generator=gen, dtype=torch.float64) < restore).to(p.dtype)
                p.copy_(s * mask + p * (1 - mask))
        outputs.append(pseudo)
    return student, teacher, outputs, augmented


@pytest.mark.parametrize("threshold", [1.0, 0.0])  # always / never average over augmentations
def test_cotta_matches_a_hand_written_implementation(threshold):
    model = _bn_model(seed=3)
    batches = [_batch(8, seed=s, shift=0.4) for s in range(20, 24)]
    kwargs = dict(momentum=0.8, restore=0.2, threshold=threshold, n_aug=3, lr=0.4, seed=7)
    cotta = CoTTA(
        model, ema_momentum=0.8, restore_prob=0.2, confidence_threshold=threshold, n_augmentations=3,
        augment=_noise_augment, seed=7, optimizer="sgd", lr=0.4, momentum=0.0,
    )  # fmt: skip
    ours = [cotta(x) for x in batches]
    student, teacher, reference, augmented = _cotta_by_hand(model, batches, **kwargs)
    assert augmented == (4 if threshold == 1.0 else 0) == int(cotta.num_augmented)
    _assert_matches(cotta, ours, student, teacher, reference)
    if threshold == 1.0:
        assert not torch.allclose(cotta.teacher[1].weight, model[1].weight, atol=1e-6)  # the teacher moved
    else:  # without augmentations the student starts equal to its teacher: the gradient p − q is 0, nothing moves
        assert all(torch.allclose(cotta.model.get_parameter(n), p, atol=1e-12) for n, p in model.named_parameters())
    assert 0 < int(cotta.num_restored) < 4 * sum(p.numel() for p in model.parameters())
    assert int(cotta.num_updates) == 4 and int(cotta.num_backward) == 32 and int(cotta.num_samples) == 32


@pytest.mark.parametrize("bias, expect_average", [(0.0, True), (8.0, False)])
def test_cotta_averages_augmentations_only_below_the_confidence_threshold(bias, expect_average):
    # the source's confidence is set by the last layer: a near-zero weight and bias b on class 0 give
    # max softmax ≈ e^b / (e^b + 3): 0.25 for b = 0, above 0.99 for b = 8
    model = _bn_model(seed=4)
    with torch.no_grad():
        model[4].weight.mul_(0.05)
        model[4].bias.copy_(torch.tensor([bias, 0.0, 0.0, 0.0], dtype=DT))
    x = _batch(8, seed=30)
    with torch.no_grad():
        confidence = float(copy.deepcopy(model).train()(x).softmax(1).amax(1).mean())
    assert (confidence < 0.9) == expect_average
    recorder = _Recorder()
    cotta = CoTTA(model, confidence_threshold=0.9, n_augmentations=5, augment=recorder, restore_prob=0.0)
    pseudo = cotta(x)
    teacher = copy.deepcopy(model).train()  # the teacher before its first update is the source
    with torch.no_grad():
        if expect_average:
            assert len(recorder.outputs) == 5
            expected = torch.stack([teacher(v) for v in recorder.outputs]).mean(0)  # the mean of the logits
        else:
            assert len(recorder.outputs) == 0
            expected = teacher(x)
    assert torch.allclose(pseudo, expected, atol=1e-12)
    assert int(cotta.num_augmented) == int(expect_average)


def test_cotta_restore_one_returns_the_source_and_zero_keeps_the_update():
    model, x = _bn_model(), _batch()
    full = CoTTA(model, restore_prob=1.0, confidence_threshold=0.0, lr=0.1)
    none = CoTTA(model, restore_prob=0.0, confidence_threshold=0.0, lr=0.1)
    full(x)
    none(x)
    total = sum(p.numel() for p in model.parameters())
    assert int(full.num_restored) == total and int(none.num_restored) == 0
    for name, p in model.named_parameters():
        assert torch.equal(full.model.get_parameter(name), p), name
        assert torch.equal(full.anchor.get_parameter(name), p), name  # the anchor never changes
    changed = [n for n, p in model.named_parameters() if not torch.equal(none.model.get_parameter(n), p)]
    assert len(changed) >= 3
    # the teacher took its EMA step from the updated (not yet restored) student in both
    assert torch.allclose(full.teacher[1].weight, none.teacher[1].weight, atol=1e-15)
    assert not torch.equal(full.teacher[1].weight, model[1].weight)


# ---------------------------------------------------------------------------------------------------- RMT
def _rmt_by_hand(model, batches, *, consistency, momentum, lr, seed):
    """RMT's target loss with plain SGD, written out from rmt.py (symmetric_entropy / its cross-entropy form)."""
    student, teacher = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    gen = torch.Generator().manual_seed(seed)
    outputs = []
    for x in batches:
        out, out_aug = student(x), student(_noise_augment(x, gen))
        with torch.no_grad():
            ema = teacher(x)
        if consistency == "sce":
            loss = (
                -0.25 * (ema.softmax(1) * out.log_softmax(1)).sum(1)
                - 0.25 * (out.softmax(1) * ema.log_softmax(1)).sum(1)
                - 0.25 * (ema.softmax(1) * out_aug.log_softmax(1)).sum(1)
                - 0.25 * (out_aug.softmax(1) * ema.log_softmax(1)).sum(1)
            ).mean(0)
        else:
            loss = (-0.5 * (ema.softmax(1) * (out.log_softmax(1) + out_aug.log_softmax(1))).sum(1)).mean(0)
        _sgd_step(student, loss, lr)
        _ema(teacher, student, momentum)
        outputs.append(out.detach() + ema)
    return student, teacher, outputs


@pytest.mark.parametrize("consistency", ["sce", "ce"])
def test_rmt_matches_a_hand_written_implementation(consistency):
    model = _bn_model(seed=6)
    batches = [_batch(8, seed=s, shift=0.5) for s in range(40, 44)]
    rmt = RMT(
        model, ema_momentum=0.6, consistency=consistency, augment=_noise_augment, seed=3, optimizer="sgd", lr=0.5,
        momentum=0.0,
    )  # fmt: skip
    ours = [rmt(x) for x in batches]
    student, teacher, reference = _rmt_by_hand(model, batches, consistency=consistency, momentum=0.6, lr=0.5, seed=3)
    _assert_matches(rmt, ours, student, teacher, reference)
    assert not torch.allclose(rmt.model[1].weight, model[1].weight, atol=1e-6)


def test_rmt_consistency_choice_changes_the_update_and_view_can_be_dropped():
    model, x = _bn_model(), _batch()
    runs = {}
    for consistency in ("sce", "ce"):
        for view in (True, False):
            rmt = RMT(model, consistency=consistency, augmented_view=view, optimizer="sgd", lr=0.5, momentum=0.0)
            rmt(x)
            runs[consistency, view] = rmt.model[1].weight.detach().clone()
    values = list(runs.values())
    assert all(not torch.allclose(a, b, atol=1e-8) for i, a in enumerate(values) for b in values[i + 1 :])
    # without the augmented view and with CE, student = teacher at the first step: the gradient p − q is zero
    assert torch.allclose(runs["ce", False], model[1].weight, atol=1e-12)


# ---------------------------------------------------------------------------------------------------- shared
def _methods(model, **kwargs):
    return [
        CoTTA(model, n_augmentations=2, confidence_threshold=1.0, restore_prob=0.1, lr=0.05, **kwargs),
        RMT(model, lr=0.05, **kwargs),
    ]


def test_the_teacher_never_receives_gradients():
    model = _bn_model()
    for method in _methods(model):
        for s in range(3):
            out = method(_batch(seed=s))
            assert not out.requires_grad
        in_optimizer = {id(p) for group in method.optimizer.param_groups for p in group["params"]}
        frozen = list(method.teacher.parameters()) + (
            list(method.anchor.parameters()) if isinstance(method, CoTTA) else []
        )
        for p in frozen:
            assert not p.requires_grad and p.grad is None and id(p) not in in_optimizer
        assert in_optimizer == {id(p) for p in method.model.parameters()}


def test_episodic_reset_restores_everything_including_the_generator():
    model, x = _bn_model(), _batch()
    for method in _methods(model, episodic=True):
        first = method(x)
        start = _state(method)
        assert torch.equal(method(x), first)  # same augmentations, same restore masks
        assert _same(_state(method), start)
    for method in _methods(model):
        first = method(x)
        saved = method._saved["module"]
        method(_batch(seed=5))
        method(_batch(seed=6))
        assert not _same(_state(method), saved)
        method.reset()
        assert _same(_state(method), saved)
        assert torch.allclose(method(x), first, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_runs_in_float32_and_float64_and_is_seeded(dtype):
    model, x = _bn_model().to(dtype), _batch().to(dtype)
    for a, b in zip(_methods(model, seed=3), _methods(model, seed=3)):
        out = [a(x), a(x + 0.1)]
        assert all(o.dtype == dtype and bool(torch.isfinite(o).all()) for o in out)
        assert torch.equal(out[1], (b(x), b(x + 0.1))[1])  # the same seed, the same run, bit for bit
        assert a.teacher[1].weight.dtype == dtype


def test_a_bad_batch_or_augmentation_raises_and_leaves_the_state_unchanged():
    model = _bn_model()

    def nan_augment(x, generator):
        return x * math.nan

    def short_augment(x, generator):
        return x[:, :, :3]

    for method in _methods(model):
        method(_batch())
        saved = _state(method)
        bad_x = _batch()
        bad_x[0, 0, 1, 1] = math.nan
        with pytest.raises(ValueError, match="x"):
            method(bad_x)
        assert _same(_state(method), saved)
        for augment in (nan_augment, short_augment):
            method.augment = augment
            with pytest.raises(ValueError, match="augment"):
                method(_batch(seed=9))
            assert _same(_state(method), saved)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: CoTTA(_bn_model(), ema_momentum=1.0), "ema_momentum"),
        (lambda: CoTTA(_bn_model(), ema_momentum=-0.1), "ema_momentum"),
        (lambda: RMT(_bn_model(), ema_momentum=math.nan), "ema_momentum"),
        (lambda: CoTTA(_bn_model(), restore_prob=1.5), "restore_prob"),
        (lambda: CoTTA(_bn_model(), restore_prob=-0.01), "restore_prob"),
        (lambda: CoTTA(_bn_model(), confidence_threshold=1.2), "confidence_threshold"),
        (lambda: CoTTA(_bn_model(), n_augmentations=0), "n_augmentations"),
        (lambda: CoTTA(_bn_model(), n_augmentations=2.5), "n_augmentations"),
        (lambda: CoTTA(_bn_model(), augment="flip"), "augment"),
        (lambda: RMT(_bn_model(), seed=-1), "seed"),
        (lambda: RMT(_bn_model(), consistency="kl"), "consistency"),
        (lambda: RMT(_bn_model(), adapt="none"), "adapt"),
        (lambda: CoTTA(nn.Sequential(nn.Flatten(), nn.Linear(16, 4)), adapt="bn_affine"), "adapt"),
        (lambda: RMT(nn.Sequential(nn.Flatten(), nn.Linear(16, 4))), "batch_stats"),
        (lambda: ema_update_([torch.ones(2)], [torch.ones(2)], 1.0), "momentum"),
        (lambda: ema_update_([torch.ones(2)], [torch.ones(3)], 0.5), "student"),
        (lambda: ema_update_([], [], 0.5), "teacher"),
        (lambda: stochastic_restore_([torch.ones(2)], [torch.ones(2)], 1.5, torch.Generator()), "prob"),
        (
            lambda: stochastic_restore_([torch.ones(2)], [torch.ones(2), torch.ones(2)], 0.5, torch.Generator()),
            "source",
        ),
        (lambda: stochastic_restore_([torch.ones(2)], [torch.ones(2)], 0.5, None), "generator"),
        (lambda: cotta_augment(torch.zeros(2, 4, 4), torch.Generator()), "x"),
        (lambda: cotta_augment(torch.zeros(2, 1, 4, 4), torch.Generator(), degrees=-1.0), "degrees"),
        (lambda: cotta_augment(torch.zeros(2, 1, 4, 4), torch.Generator(), translate=1.5), "translate"),
        (lambda: cotta_augment(torch.zeros(2, 1, 4, 4), torch.Generator(), scale=(1.1, 0.9)), "scale"),
        (lambda: cotta_augment(torch.zeros(2, 1, 4, 4), torch.Generator(), scale=(0.0, 1.0)), "scale"),
        (lambda: cotta_augment(torch.zeros(2, 1, 4, 4), torch.Generator(), contrast=(-0.1, 1.0)), "contrast"),
        (lambda: cotta_augment(torch.zeros(2, 1, 4, 4), torch.Generator(), noise_std=-1.0), "noise_std"),
    ],
)
def test_bad_arguments_name_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# ---------------------------------------------------------------------------------------------------- smoke
def _blob_images(n, generator, shift=0.0, contrast=1.0):
    """Three classes of 6×6 images: a Gaussian blob at a class-specific corner, plus noise; shifted/contrasted."""
    labels = torch.arange(n) % 3
    centres = torch.tensor([[1.5, 1.5], [1.5, 4.0], [4.0, 2.5]], dtype=DT)[labels]
    coords = torch.arange(6, dtype=DT)
    dist = (coords[None, :, None] - centres[:, None, None, 0]) ** 2 + (
        coords[None, None, :] - centres[:, None, None, 1]
    ) ** 2
    images = torch.exp(-dist / 2.0) + 0.3 * torch.randn(n, 6, 6, generator=generator, dtype=DT)
    return (contrast * images + shift).unsqueeze(1), labels


def test_smoke_cotta_and_rmt_adapt_to_a_shifted_blob_stream():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)
    ).to(DT)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(60):
        x, y = _blob_images(48, gen)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    stream = [_blob_images(24, gen, shift=1.5, contrast=0.6) for _ in range(15)]
    held_out = _blob_images(48, gen, shift=1.5, contrast=0.6)[0]

    def entropy_of(method):
        with torch.no_grad():
            return float(_entropy(method.model(held_out)).mean())

    methods = {
        "cotta": CoTTA(model, ema_momentum=0.9, n_augmentations=4, lr=0.01),
        "rmt": RMT(model, ema_momentum=0.9, lr=0.01),
        "tent": Tent(model, lr=0.01),
    }
    for name, method in methods.items():
        before = entropy_of(method)
        correct = 0
        for x, y in stream:
            out = method(x)
            assert bool(torch.isfinite(out).all()), name
            correct += int((out.argmax(1) == y).sum())
        assert correct / (15 * 24) > 0.5, name  # well above chance (1/3) on the shifted stream
        if name == "cotta":  # a soft cross-entropy towards augmentation-averaged labels need not sharpen: it moves
            assert not torch.allclose(method.teacher[4].weight, model[4].weight, atol=1e-6)
        else:  # the symmetric term −Σ p log q (RMT) and the entropy (TENT) sharpen the student's predictions
            assert entropy_of(method) < before, name
