"""OrthoGrad: the gradient projected orthogonal to the weights, its norm kept."""

import math

import torch

from regkit.optim import OrthoGrad, orthogonalize_


def test_orthogonalized_gradient_is_orthogonal_and_keeps_its_norm():
    g = torch.Generator().manual_seed(0)
    w, grad = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(7, 5, generator=g, dtype=torch.float64)
    new = orthogonalize_(w, grad.clone())
    assert abs(float((new * w).sum())) < 1e-12
    assert math.isclose(float(new.norm()), float(grad.norm()), rel_tol=1e-12)
    # removing the component along w: new ∝ grad - (<w,g>/<w,w>) w
    expected = grad - (grad * w).sum() / (w * w).sum() * w
    torch.testing.assert_close(new / new.norm(), expected / expected.norm())


def test_orthograd_sgd_update_is_orthogonal_to_the_weights():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4, bias=False).double()
    before = model.weight.detach().clone()
    opt = OrthoGrad(model.parameters(), torch.optim.SGD, lr=0.1)
    model(torch.randn(9, 6, dtype=torch.float64)).pow(2).sum().backward()
    raw = model.weight.grad.clone()
    opt.step()
    update = model.weight.detach() - before
    assert abs(float((update * before).sum())) < 1e-12
    assert math.isclose(float(update.norm()), 0.1 * float(raw.norm()), rel_tol=1e-10)
