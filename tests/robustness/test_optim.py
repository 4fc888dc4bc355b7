"""Issue 12, optimizers: Lion and OrthoGrad (over SGD, AdamW and Lion) with zero-initialized
parameters, float16/bfloat16 parameters and gradients and zero gradients never produce NaN;
OrthoGrad's update stays orthogonal and norm-preserving in half precision."""

import pytest
import torch
from _robustness_cases import FAST
from hypothesis import given
from hypothesis import strategies as st

from regkit.optim import Lion, OrthoGrad, orthogonalize_

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
OPTIMIZERS = {
    "Lion": lambda ps: Lion(ps, lr=1e-2, weight_decay=0.1),
    "OrthoGrad(SGD)": lambda ps: OrthoGrad(ps, torch.optim.SGD, lr=0.1),
    # torch's AdamW needs an eps that float16 can represent (its default 1e-8 rounds to 0)
    "OrthoGrad(AdamW)": lambda ps: OrthoGrad(ps, torch.optim.AdamW, lr=1e-2, eps=1e-4),
    "OrthoGrad(Lion)": lambda ps: OrthoGrad(ps, Lion, lr=1e-2),
}


@FAST
@given(
    init=st.sampled_from(["zero", "small", "large"]),
    grad=st.sampled_from(["zero", "random", "huge", "tiny"]),
    seed=st.integers(0, 2**16),
)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_never_produce_nan(name, dtype, init, grad, seed):
    g = torch.Generator().manual_seed(seed)
    scale = {"zero": 0.0, "small": 1e-4, "large": 300.0}[init]
    param = torch.nn.Parameter((torch.randn(3, 4, generator=g) * scale).to(dtype))
    opt = OPTIMIZERS[name]([param])
    for _ in range(3):
        g_scale = {"zero": 0.0, "random": 1.0, "huge": 1e3, "tiny": 1e-7}[grad]
        param.grad = (torch.randn(3, 4, generator=g) * g_scale).to(dtype)
        opt.step()
        assert torch.isfinite(param).all()
        assert all(
            torch.isfinite(v).all()
            for state in opt.state.values()
            for v in state.values()
            if isinstance(v, torch.Tensor)
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_orthogonalize_in_half_precision(dtype):
    g = torch.Generator().manual_seed(0)
    weight, grad = (torch.randn(64, generator=g) * 200).to(dtype), (torch.randn(64, generator=g) * 100).to(dtype)
    norm = torch.linalg.vector_norm(grad.float())
    out = orthogonalize_(weight, grad.clone())
    assert torch.isfinite(out).all()
    cosine = torch.dot(out.float(), weight.float()) / (
        torch.linalg.vector_norm(out.float()) * torch.linalg.vector_norm(weight.float())
    )
    assert abs(float(cosine)) < 1e-2
    assert float(torch.linalg.vector_norm(out.float())) == pytest.approx(float(norm), rel=1e-2)
    # degenerate cases are explicit: zero weight keeps the gradient, zero gradient stays zero
    assert torch.equal(
        orthogonalize_(torch.zeros(4, dtype=dtype), torch.ones(4, dtype=dtype)), torch.ones(4, dtype=dtype)
    )
    assert (orthogonalize_(torch.ones(4, dtype=dtype), torch.zeros(4, dtype=dtype)) == 0).all()
    assert (orthogonalize_(torch.ones(4, dtype=dtype), torch.full((4,), 2.0, dtype=dtype)) == 0).all()
