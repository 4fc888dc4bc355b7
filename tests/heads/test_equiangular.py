"""Fixed heads: the simplex ETF's exact geometry, EBV generation (the bound it reaches, the true
maximum it reports, one step of the paper's procedure), the parameter-free head and its loss."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from regkit.heads import (
    EBVResult,
    FixedHead,
    ebv_loss,
    equiangular_basis_vectors,
    max_abs_cosine,
    simplex_etf,
    welch_bound,
)


@pytest.fixture(autouse=True)
def one_thread():
    """The generator's steps are tiny matrix products (100 x 100): on a busy 2-core machine torch's
    intra-op threads only spin against each other (measured: 0.05 s in one thread, up to minutes in two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def brute_force_max_abs_cosine(vectors):
    """Pair by pair, in float64."""
    v = vectors.double()
    worst = 0.0
    for i, j in itertools.combinations(range(v.shape[0]), 2):
        cos = float(v[i] @ v[j]) / (float(v[i].norm()) * float(v[j].norm()))
        worst = max(worst, abs(cos))
    return worst


# ----------------------------------------------------------------------------------------------
# the simplex ETF
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, dim", [(2, 1), (3, 2), (5, 4), (10, 9), (10, 10), (10, 64), (30, 40)])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_simplex_etf_is_unit_and_equiangular_at_minus_one_over_n_minus_one(n, dim, dtype, tol):
    m = simplex_etf(n, dim, generator=gen(n + dim), dtype=dtype)
    assert m.shape == (n, dim) and m.dtype == dtype
    gram = m.double() @ m.double().T
    expected = torch.full((n, n), -1.0 / (n - 1), dtype=torch.float64)
    expected.fill_diagonal_(1.0)
    torch.testing.assert_close(gram, expected, rtol=0, atol=tol)
    assert float(m.double().sum(0).norm()) < 10 * tol * n  # the vertices of a centred simplex


def test_simplex_etf_meets_the_welch_bound_at_n_equal_d_plus_one():
    for n in (3, 6, 11):
        m = simplex_etf(n, n - 1, generator=gen(n), dtype=torch.float64)
        assert max_abs_cosine(m) == pytest.approx(1 / (n - 1), abs=1e-12)
        assert welch_bound(n, n - 1) == pytest.approx(1 / (n - 1), abs=1e-15)


def test_simplex_etf_is_a_random_rotation_drawn_from_the_generator():
    a, b = simplex_etf(5, 8, generator=gen(1)), simplex_etf(5, 8, generator=gen(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    c = simplex_etf(5, 8, generator=gen(2))
    assert not torch.allclose(a, c)
    torch.testing.assert_close(a @ a.T, c @ c.T, rtol=0, atol=1e-6)  # same frame, rotated


# ----------------------------------------------------------------------------------------------
# EBV generation
# ----------------------------------------------------------------------------------------------


def test_ebv_reaches_the_target_and_reports_the_true_maximum():
    result = equiangular_basis_vectors(100, 32, max_cosine=0.2, generator=gen(0))
    assert isinstance(result, EBVResult)
    assert result.converged and 0 < result.steps < 10_000 and result.target == 0.2
    assert result.vectors.shape == (100, 32) and result.vectors.dtype == torch.float32
    torch.testing.assert_close(result.vectors.double().norm(dim=1), torch.ones(100, dtype=torch.float64))
    truth = brute_force_max_abs_cosine(result.vectors)
    assert result.max_abs_cosine == pytest.approx(truth, abs=1e-12)
    assert truth <= 0.2 + 1e-4 + 1e-6  # alpha + tol, up to float32 rounding of the returned rows
    # random unit vectors in R^32 are far from it: the optimisation did the work
    start = F.normalize(torch.randn(100, 32, generator=gen(0)), dim=1)
    assert max_abs_cosine(start) > 0.5


def test_ebv_is_deterministic_given_the_generator():
    a = equiangular_basis_vectors(20, 8, max_cosine=0.45, generator=gen(3))
    b = equiangular_basis_vectors(20, 8, max_cosine=0.45, generator=gen(3))
    torch.testing.assert_close(a.vectors, b.vectors, rtol=0, atol=0)
    assert (a.steps, a.max_abs_cosine) == (b.steps, b.max_abs_cosine)


def test_ebv_fewer_classes_than_dimensions_get_almost_orthogonal():
    result = equiangular_basis_vectors(10, 16, max_cosine=0.01, dtype=torch.float64, generator=gen(4))
    assert result.converged and result.max_abs_cosine <= 0.01 + 1e-4


def test_one_step_is_projected_sgd_on_the_clipped_pairwise_cosines():
    """Steps = 1: the rows are normalize(Ŵ - lr ∇L(Ŵ)), Ŵ the normalised Gaussian start and
    L(Ŵ) = Σ_{i≠j} relu(|ŵ_i·ŵ_j| - α), its gradient by autograd."""
    n, d, alpha, lr = 12, 5, 0.4, 0.05
    start = F.normalize(torch.randn(n, d, generator=gen(5), dtype=torch.float64), dim=1).requires_grad_()
    cos = start @ start.T
    off = ~torch.eye(n, dtype=torch.bool)
    loss = F.relu(cos.abs()[off] - alpha).sum()
    loss.backward()
    expected = F.normalize(start.detach() - lr * start.grad, dim=1)
    result = equiangular_basis_vectors(n, d, max_cosine=alpha, steps=1, lr=lr, dtype=torch.float64, generator=gen(5))
    assert result.steps == 1
    torch.testing.assert_close(result.vectors, expected, rtol=1e-12, atol=1e-12)


def test_ebv_that_does_not_converge_says_so_and_reports_its_true_maximum():
    # just above the Welch bound (0.146) the hinge sum trades a few parallel pairs for the rest
    result = equiangular_basis_vectors(100, 32, max_cosine=0.16, steps=50, generator=gen(0))
    assert not result.converged and result.steps == 50
    assert result.max_abs_cosine == pytest.approx(brute_force_max_abs_cosine(result.vectors), abs=1e-12)
    assert result.max_abs_cosine > 0.16


def test_welch_bound_and_max_abs_cosine():
    assert welch_bound(10, 16) == 0.0 and welch_bound(16, 16) == 0.0
    assert welch_bound(100, 32) == pytest.approx(math.sqrt(68 / (32 * 99)))
    v = torch.randn(9, 3, generator=gen(6))
    assert max_abs_cosine(v) == pytest.approx(brute_force_max_abs_cosine(v), abs=1e-12)
    assert max_abs_cosine(3 * torch.eye(4)) == 0.0


# ----------------------------------------------------------------------------------------------
# the fixed head and the EBV loss
# ----------------------------------------------------------------------------------------------


def test_fixed_head_has_no_trainable_parameters_and_matches_the_formula():
    basis = torch.randn(7, 5, generator=gen(7), dtype=torch.float64) * 3  # not normalised: the head does it
    head = FixedHead(basis, temperature=0.1)
    assert list(head.parameters()) == [] and sum(p.numel() for p in head.parameters()) == 0
    assert "basis" in dict(head.named_buffers()) and "basis" in head.state_dict()
    features = torch.randn(4, 5, generator=gen(8), dtype=torch.float64, requires_grad=True)
    logits = head(features)
    manual = torch.empty(4, 7, dtype=torch.float64)
    for i in range(4):
        for k in range(7):
            f, w = features[i].detach(), basis[k]
            manual[i, k] = float(f @ w) / (float(f.norm()) * float(w.norm())) / 0.1
    torch.testing.assert_close(logits.detach(), manual, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(head.predict(features), manual.argmax(1))
    logits.sum().backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()
    assert head.num_classes == 7 and "temperature=0.1" in repr(head)


def test_fixed_head_default_temperature_is_the_official_one_and_moves_with_to():
    head = FixedHead(simplex_etf(4, 6, generator=gen(9)))
    assert head.temperature == 0.07
    features = torch.randn(3, 6, generator=gen(10))
    expected = F.normalize(features, dim=1) @ head.basis.T / 0.07
    torch.testing.assert_close(head(features), expected)
    head64 = head.double()
    assert head64.basis.dtype == torch.float64 and head64(features.double()).dtype == torch.float64


def test_fixed_head_in_half_precision_is_computed_in_float32():
    head = FixedHead(simplex_etf(4, 6, generator=gen(11)))
    features = torch.randn(5, 6, generator=gen(12)).half()
    logits = head(features)
    assert logits.dtype == torch.float16
    torch.testing.assert_close(logits.float(), head(features.float()), rtol=2e-3, atol=2e-2)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ebv_loss_is_cross_entropy_of_the_fixed_heads_logits(reduction):
    basis = equiangular_basis_vectors(12, 6, max_cosine=0.5, generator=gen(13)).vectors.double()
    features = torch.randn(8, 6, generator=gen(14), dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 12, (8,), generator=gen(15))
    ours = ebv_loss(features, basis, labels, temperature=0.2, label_smoothing=0.1, reduction=reduction)
    reference = F.cross_entropy(
        FixedHead(basis, temperature=0.2)(features), labels, label_smoothing=0.1, reduction=reduction
    )
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    (grad,) = torch.autograd.grad(ours.sum(), features)
    (expected,) = torch.autograd.grad(reference.sum(), features)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    # the paper's formula, term by term (no smoothing)
    f = F.normalize(features.detach(), dim=1)
    z = f @ basis.T / 0.07
    manual = -(z.gather(1, labels[:, None]).squeeze(1) - z.logsumexp(1))
    torch.testing.assert_close(ebv_loss(features.detach(), basis, labels, reduction="none"), manual)


def test_training_through_the_fixed_head_moves_features_only():
    basis = simplex_etf(3, 4, generator=gen(16))
    layer = torch.nn.Linear(4, 4)
    model = torch.nn.Sequential(layer, FixedHead(basis))
    assert sum(p.numel() for p in model.parameters()) == layer.weight.numel() + layer.bias.numel()
    before = model[1].basis.clone()
    x, y = torch.randn(16, 4, generator=gen(17)), torch.randint(0, 3, (16,), generator=gen(18))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    torch.testing.assert_close(model[1].basis, before, rtol=0, atol=0)


def test_heads_on_the_device(device):
    etf = simplex_etf(5, 7, generator=gen(19), device=device)
    assert etf.device.type == device.type
    torch.testing.assert_close(etf.cpu(), simplex_etf(5, 7, generator=gen(19)), rtol=0, atol=1e-6)
    ebv = equiangular_basis_vectors(20, 8, max_cosine=0.45, generator=gen(20), device=device)
    assert ebv.vectors.device.type == device.type and ebv.converged and ebv.max_abs_cosine <= 0.45 + 1e-4 + 1e-6
    head = FixedHead(etf.cpu()).to(device)
    features = torch.randn(3, 7, generator=gen(21)).to(device)
    assert head(features).device.type == device.type
    labels = torch.tensor([0, 4, 2], device=device)
    assert ebv_loss(features, etf, labels).device.type == device.type


# ----------------------------------------------------------------------------------------------
# rejected inputs: one test per kind, each naming the argument
# ----------------------------------------------------------------------------------------------

BASIS = torch.randn(4, 3)


@pytest.mark.parametrize(
    "name, call",
    [
        ("dim", lambda: simplex_etf(10, 8)),
        ("num_classes", lambda: simplex_etf(1, 8)),
        ("num_classes", lambda: simplex_etf(2.5, 8)),
        ("dtype", lambda: simplex_etf(3, 4, dtype=torch.float16)),
        ("num_classes", lambda: equiangular_basis_vectors(1, 8, max_cosine=0.2)),
        ("dim", lambda: equiangular_basis_vectors(4, 0, max_cosine=0.2)),
        ("max_cosine", lambda: equiangular_basis_vectors(4, 8, max_cosine=0.0)),
        ("max_cosine", lambda: equiangular_basis_vectors(4, 8, max_cosine=1.0)),
        ("max_cosine", lambda: equiangular_basis_vectors(4, 8, max_cosine=-0.2)),
        ("max_cosine", lambda: equiangular_basis_vectors(4, 8, max_cosine=math.nan)),
        ("max_cosine", lambda: equiangular_basis_vectors(100, 32, max_cosine=0.1)),  # below the Welch bound
        ("steps", lambda: equiangular_basis_vectors(4, 8, max_cosine=0.2, steps=0)),
        ("lr", lambda: equiangular_basis_vectors(4, 8, max_cosine=0.2, lr=0.0)),
        ("tol", lambda: equiangular_basis_vectors(4, 8, max_cosine=0.2, tol=-1e-3)),
        ("dtype", lambda: equiangular_basis_vectors(4, 8, max_cosine=0.2, dtype=torch.int64)),
        ("num_vectors", lambda: welch_bound(1, 3)),
        ("vectors", lambda: max_abs_cosine(torch.zeros(3, 2))),
        ("vectors", lambda: max_abs_cosine(torch.ones(1, 2))),
        ("basis", lambda: FixedHead(torch.randn(1, 3))),
        ("basis", lambda: FixedHead(torch.zeros(3, 3))),
        ("basis", lambda: FixedHead(torch.tensor([[1.0, math.nan], [0.0, 1.0]]))),
        ("basis", lambda: FixedHead(torch.randn(4))),
        ("temperature", lambda: FixedHead(BASIS, temperature=0.0)),
        ("temperature", lambda: FixedHead(BASIS, temperature=math.inf)),
        ("features", lambda: FixedHead(BASIS)(torch.randn(2, 4))),
        ("features", lambda: ebv_loss(torch.randn(2, 4), BASIS, torch.tensor([0, 1]))),
        ("labels", lambda: ebv_loss(torch.randn(2, 3), BASIS, torch.tensor([0, 4]))),
        ("labels", lambda: ebv_loss(torch.randn(2, 3), BASIS, torch.tensor([0, 1, 2]))),
        ("temperature", lambda: ebv_loss(torch.randn(2, 3), BASIS, torch.tensor([0, 1]), temperature=-1.0)),
        ("label_smoothing", lambda: ebv_loss(torch.randn(2, 3), BASIS, torch.tensor([0, 1]), label_smoothing=1.5)),
        ("reduction", lambda: ebv_loss(torch.randn(2, 3), BASIS, torch.tensor([0, 1]), reduction="avg")),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(name, call):
    with pytest.raises(ValueError, match=name):
        call()


def test_a_generator_that_is_not_one_is_a_type_error():
    with pytest.raises(TypeError, match="generator"):
        simplex_etf(3, 4, generator=0)
    with pytest.raises(TypeError, match="generator"):
        equiangular_basis_vectors(3, 4, max_cosine=0.5, generator="seed")
