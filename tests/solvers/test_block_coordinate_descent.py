"""Block coordinate descent: greedy rules against a brute-force evaluation of their definitions, solutions
against torch.linalg.lstsq, scikit-learn's Lasso and scipy's L-BFGS, and the bad-input rules."""

import numpy as np
import pytest
import scipy.optimize
import torch
from sklearn.linear_model import Lasso

from regkit.solvers import BlockCoordinateDescentResult, block_coordinate_descent, partition_blocks


def _problem(seed, n=40, d=12, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-1, 1, d, dtype=dtype)[torch.randperm(d, generator=g)]  # non-uniform L_b
    design = torch.randn(n, d, generator=g, dtype=dtype) * scales
    return design, torch.randn(n, generator=g, dtype=dtype), g


def _objective(problem, design, targets, reg):
    """F written independently of the module (autograd gives its gradient)."""
    if problem == "logistic":
        return lambda x: torch.log1p(torch.exp(-targets * (design @ x))).sum() + 0.5 * reg * x @ x
    if problem == "lasso":
        return lambda x: 0.5 * (design @ x - targets).square().sum() + reg * x.abs().sum()
    return lambda x: 0.5 * (design @ x - targets).square().sum() + 0.5 * reg * x @ x


def _bound(problem, columns, reg):
    """H_b from its definition: the largest block Hessian of f (a constant for the quadratics; for the logistic
    loss, the sigmoid's derivative is at most 1/4)."""
    ridge = 0.0 if problem == "lasso" else reg
    scale = 0.25 if problem == "logistic" else 1.0
    return scale * columns.T @ columns + ridge * torch.eye(columns.shape[1], dtype=columns.dtype)


def _brute_force_block(problem, rule, update, design, targets, reg, blocks, x):
    """The block each greedy rule picks, from its definition: norms of the autograd gradient, and for GS-q the
    minimum of the block's quadratic model found numerically (scipy)."""
    x = x.clone().requires_grad_(True)
    objective = _objective(problem, design, targets, reg)
    (gradient,) = torch.autograd.grad(objective(x), x)
    x = x.detach()
    if problem == "lasso":  # smooth part only
        gradient = gradient - reg * torch.sign(x)
    scores = []
    for block in blocks:
        bound = _bound(problem, design[:, block], reg).numpy()
        lipschitz = float(np.linalg.eigvalsh(bound).max())
        g_b, x_b = gradient[block].numpy(), x[block].numpy()
        if problem == "lasso" and rule in ("gs", "gsl"):  # minimum-norm subgradient of F over the block
            g_b = np.array([gi + reg * np.sign(xi) if xi != 0 else np.sign(gi) * max(abs(gi) - reg, 0)
                            for gi, xi in zip(g_b, x_b)])  # fmt: skip
        if rule == "gs":
            scores.append(np.linalg.norm(g_b))
        elif rule == "gsl":
            scores.append(np.linalg.norm(g_b) / np.sqrt(lipschitz))
        elif problem == "lasso":  # GS-q: min_d <g, d> + L/2 |d|² + λ|x + d|₁ − λ|x|₁, separable: Brent per entry
            total = 0.0
            for gi, xi in zip(g_b, x_b):
                piece = lambda d, gi=gi, xi=xi, lb=lipschitz: gi * d + 0.5 * lb * d * d + reg * (abs(xi + d) - abs(xi))
                candidates = [scipy.optimize.minimize_scalar(piece, bounds=(lo, hi), method="bounded",
                                                             options={"xatol": 1e-12}).fun
                              for lo, hi in ((-100, -xi), (-xi, 100))]  # fmt: skip
                total += min(min(candidates), piece(-xi))
            scores.append(-total)
        else:  # GS-Q: -min_d <g, d> + ½ dᵀ M d, numerically, with M = L I (gradient) or H_b (newton)
            metric = bound if update == "newton" else lipschitz * np.eye(len(block))
            model = lambda d, g_b=g_b, metric=metric: g_b @ d + 0.5 * d @ metric @ d
            jac = lambda d, g_b=g_b, metric=metric: g_b + metric @ d
            best = scipy.optimize.minimize(model, np.zeros(len(block)), jac=jac, method="BFGS", tol=1e-14)
            scores.append(-best.fun)
    return int(np.argmax(scores)), scores


CASES = [(p, r, u) for p in ("least_squares", "logistic", "lasso") for r in ("gs", "gsl", "gsq")
         for u in ("gradient", "newton")]  # fmt: skip


@pytest.mark.parametrize(("problem", "rule", "update"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_rules_pick_the_brute_force_block(problem, rule, update, seed):
    design, targets, g = _problem(seed)
    if problem == "logistic":
        targets = torch.sign(targets)
    reg = {"least_squares": 0.1, "logistic": 0.5, "lasso": 3.0}[problem]
    blocks = partition_blocks(12, 3, shuffle=True, generator=g)
    x0 = torch.randn(12, generator=g, dtype=torch.float64)
    if problem == "lasso":
        x0[torch.rand(12, generator=g) < 0.4] = 0.0  # zeros exercise the subgradient and soft-thresholding
    expected, scores = _brute_force_block(problem, rule, update, design, targets, reg, blocks, x0)
    if sorted(scores)[-1] - sorted(scores)[-2] < 1e-6 * abs(sorted(scores)[-1]):
        pytest.skip("near tie between the two best blocks")
    result = block_coordinate_descent(design, targets, problem=problem, reg=reg, blocks=blocks, rule=rule,
                                      update=update, x0=x0, max_iter=1, tol=0.0)  # fmt: skip
    assert result.selected_blocks == [expected]
    # the guaranteed progress of GS-Q is a lower bound on the actual decrease of F
    if rule == "gsq" and not (problem == "lasso" and update == "newton"):
        assert result.objectives[0] - result.objectives[1] >= scores[expected] - 1e-9
    assert result.objectives[0] == pytest.approx(float(_objective(problem, design, targets, reg)(x0)), rel=1e-12)


def test_gsl_and_gsq_select_the_same_blocks_for_gradient_updates():
    design, targets, _ = _problem(5, n=60, d=30)
    runs = [block_coordinate_descent(design, targets, blocks=3, rule=rule, max_iter=50, tol=0.0)
            for rule in ("gsl", "gsq")]  # fmt: skip
    assert runs[0].selected_blocks == runs[1].selected_blocks


def test_one_newton_block_of_all_coordinates_solves_least_squares_in_one_iteration():
    design, targets, _ = _problem(3, n=50, d=20)
    result = block_coordinate_descent(design, targets, blocks=[torch.arange(20)], update="newton", tol=1e-9)
    expected = torch.linalg.lstsq(design, targets[:, None]).solution[:, 0]
    assert result.n_iter == 1 and result.converged
    torch.testing.assert_close(result.solution, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("rule", "update"), [("gsq", "gradient"), ("cyclic", "gradient"), ("gs", "newton")])
def test_least_squares_matches_lstsq(rule, update):
    design, targets, _ = _problem(4, n=50, d=10)
    design = design / design.norm(dim=0)  # well conditioned: the gradient updates converge in a few hundred steps
    result = block_coordinate_descent(design, targets, blocks=2, rule=rule, update=update, max_iter=20_000, tol=1e-12)
    expected = torch.linalg.lstsq(design, targets[:, None]).solution[:, 0]
    assert result.converged and isinstance(result, BlockCoordinateDescentResult)
    torch.testing.assert_close(result.solution, expected, rtol=1e-9, atol=1e-9)
    assert all(a >= b - 1e-12 for a, b in zip(result.objectives, result.objectives[1:]))  # monotone


@pytest.mark.parametrize("update", ["gradient", "newton"])
def test_lasso_matches_scikit_learn(update):
    design, targets, _ = _problem(6, n=30, d=40)  # d > n: sparse solution
    design, reg = design / design.norm(dim=0), 1.0
    result = block_coordinate_descent(design, targets, problem="lasso", reg=reg, blocks=4, rule="gsq", update=update,
                                      max_iter=50_000, tol=1e-12)  # fmt: skip
    # scikit-learn minimizes (1/2n)|y - Xw|² + α|w|₁: the same minimizer as ½|y - Xw|² + λ|w|₁ with α = λ/n
    reference = Lasso(alpha=reg / 30, fit_intercept=False, tol=1e-14, max_iter=200_000).fit(design, targets)
    assert result.converged
    np.testing.assert_allclose(result.solution.numpy(), reference.coef_, atol=1e-6)
    assert result.nonzeros[-1] == int((reference.coef_ != 0).sum()) < 40
    assert result.last_support_change <= result.n_iter


def test_logistic_matches_scipy_lbfgs():
    design, targets, _ = _problem(7, n=60, d=8)
    design, targets, reg = design / design.norm(dim=0), torch.sign(targets), 0.3
    result = block_coordinate_descent(design, targets, problem="logistic", reg=reg, blocks=2, rule="gsq",
                                      update="newton", max_iter=5000, tol=1e-10)  # fmt: skip
    a, y = design.numpy(), targets.numpy()
    fun = lambda x: (np.logaddexp(0, -y * (a @ x)).sum() + 0.5 * reg * x @ x,
                     a.T @ (-y / (1 + np.exp(y * (a @ x)))) + reg * x)  # fmt: skip
    reference = scipy.optimize.minimize(fun, np.zeros(8), jac=True, method="L-BFGS-B",
                                        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})  # fmt: skip
    assert result.converged
    np.testing.assert_allclose(result.solution.numpy(), reference.x, atol=1e-7)


def test_newton_blocks_beat_gradient_blocks_and_float32_follows_the_input():
    design, targets, _ = _problem(8, n=80, d=30, dtype=torch.float32)
    runs = {u: block_coordinate_descent(design, targets, blocks=5, update=u, max_iter=60, tol=0.0)
            for u in ("gradient", "newton")}  # fmt: skip
    assert runs["newton"].objective < runs["gradient"].objective
    assert runs["newton"].solution.dtype == torch.float32 and len(runs["newton"].objectives) == 61


def test_random_rule_is_reproducible_and_cyclic_cycles():
    design, targets, _ = _problem(9)
    runs = [block_coordinate_descent(design, targets, blocks=3, rule="random", max_iter=20, tol=0.0,
                                     generator=torch.Generator().manual_seed(11)) for _ in range(2)]  # fmt: skip
    assert runs[0].selected_blocks == runs[1].selected_blocks and len(set(runs[0].selected_blocks)) > 1
    assert torch.equal(runs[0].solution, runs[1].solution)
    cyclic = block_coordinate_descent(design, targets, blocks=3, rule="cyclic", max_iter=9, tol=0.0)
    assert cyclic.selected_blocks == [0, 1, 2, 3, 0, 1, 2, 3, 0]


def test_partition_blocks():
    blocks = partition_blocks(10, 3)
    assert [b.tolist() for b in blocks] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    shuffled = partition_blocks(10, 4, shuffle=True, generator=torch.Generator().manual_seed(0))
    again = partition_blocks(10, 4, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert sorted(torch.cat(shuffled).tolist()) == list(range(10)) and [len(b) for b in shuffled] == [4, 4, 2]
    assert all(torch.equal(a, b) for a, b in zip(shuffled, again)) and shuffled[0].tolist() != [0, 1, 2, 3]


def test_rejects_bad_input():
    design, targets, _ = _problem(0)
    with pytest.raises(TypeError, match="design"):
        block_coordinate_descent(design.numpy(), targets)
    with pytest.raises(ValueError, match="design"):
        block_coordinate_descent(design[0], targets)
    with pytest.raises(ValueError, match="design"):
        block_coordinate_descent(design.long(), targets)
    with pytest.raises(ValueError, match="design"):
        block_coordinate_descent(torch.where(design > 1, float("nan"), design), targets)
    with pytest.raises(ValueError, match="targets"):
        block_coordinate_descent(design, targets[:-1])
    with pytest.raises(ValueError, match="targets"):
        block_coordinate_descent(design, targets, problem="logistic")  # not ±1
    with pytest.raises(ValueError, match="problem"):
        block_coordinate_descent(design, targets, problem="huber")
    with pytest.raises(ValueError, match="rule"):
        block_coordinate_descent(design, targets, rule="gsd")
    with pytest.raises(ValueError, match="update"):
        block_coordinate_descent(design, targets, update="cubic")
    with pytest.raises(ValueError, match="reg"):
        block_coordinate_descent(design, targets, reg=-1.0)
    with pytest.raises(ValueError, match="max_iter"):
        block_coordinate_descent(design, targets, max_iter=0)
    with pytest.raises(ValueError, match="tol"):
        block_coordinate_descent(design, targets, tol=-1.0)
    with pytest.raises(ValueError, match="inner_iter"):
        block_coordinate_descent(design, targets, inner_iter=0)
    with pytest.raises(ValueError, match="x0"):
        block_coordinate_descent(design, targets, x0=torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="block_size"):
        block_coordinate_descent(design, targets, blocks=13)
    with pytest.raises(TypeError, match="blocks"):
        block_coordinate_descent(design, targets, blocks=torch.arange(12))
    with pytest.raises(ValueError, match="blocks\\[1\\]"):
        block_coordinate_descent(design, targets, blocks=[torch.arange(12), torch.tensor([0.5])])
    with pytest.raises(ValueError, match="partition"):
        block_coordinate_descent(design, targets, blocks=[torch.arange(6), torch.arange(5, 12)])
    with pytest.raises(ValueError, match="partition"):
        block_coordinate_descent(design, targets, blocks=[torch.arange(11), torch.tensor([12])])
    with pytest.raises(ValueError, match="singular"):
        block_coordinate_descent(torch.cat([design, design[:, :1]], 1), targets,
                                 blocks=[torch.arange(1, 12), torch.tensor([0, 12])], update="newton")  # fmt: skip
    with pytest.raises(ValueError, match="zero columns"):
        block_coordinate_descent(torch.cat([design, torch.zeros(40, 1, dtype=design.dtype)], 1), targets, blocks=1)
