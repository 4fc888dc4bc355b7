"""f-DPO: reverse KL is DPO, the other divergences' margins."""

import pytest
import torch
import torch.nn.functional as F

from regkit.divergences import f_dpo_loss


def logps(seed):
    g = torch.Generator().manual_seed(seed)
    return [-torch.rand(16, generator=g, dtype=torch.float64) * 20 for _ in range(4)]


def test_f_dpo_with_reverse_kl_is_dpo():
    pw, pl, rw, rl = logps(0)
    beta = 0.3
    dpo = -F.logsigmoid(beta * ((pw - rw) - (pl - rl)))
    torch.testing.assert_close(f_dpo_loss(pw, pl, rw, rl, beta=beta, reduction="none"), dpo)


def test_f_dpo_margins_for_the_other_divergences():
    pw, pl, rw, rl = logps(1)
    lw, ll = pw - rw, pl - rl
    beta = 0.5
    margins = {
        "forward_kl": -torch.exp(-lw) + torch.exp(-ll),
        "js": (lw - F.softplus(lw)) - (ll - F.softplus(ll)),  # TRL's js_divergence logits
        "alpha": (torch.exp(-0.4 * ll) - torch.exp(-0.4 * lw)) / 0.4,  # TRL's alpha_divergence logits
    }
    for name, margin in margins.items():
        ours = f_dpo_loss(pw, pl, rw, rl, beta=beta, divergence=name, alpha=0.4, reduction="none")
        torch.testing.assert_close(ours, -F.logsigmoid(beta * margin), msg=name)


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda: f_dpo_loss(*logps(0), divergence="chi2"), "valid: reverse_kl, forward_kl, js, alpha"),
        (lambda: f_dpo_loss(*logps(0)[:3], torch.zeros(3, dtype=torch.float64)), "reference_rejected_logps"),
        (lambda: f_dpo_loss(*logps(0), beta=0.0), "beta"),
    ],
)
def test_bad_input(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()
