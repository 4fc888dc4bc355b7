"""The denoising testbed: digit images in [0, 1], the three noise models' distributions, the blind-spot loss's
J-invariance, the classical filters and the PSNR against scikit-image."""

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from regkit.workbook.testbeds import denoising as tb


@pytest.fixture(scope="module")
def images():
    return tb.load_digit_images()


def test_digit_images_are_upsampled_digits_in_the_unit_interval(images):
    from skimage.transform import resize
    from sklearn.datasets import load_digits

    assert images.train.shape[1:] == (1, 16, 16)
    assert (len(images.train), len(images.validation), len(images.test)) == (1167, 180, 450)
    everything = torch.cat([images.train, images.validation, images.test])
    assert float(everything.min()) == 0.0 and float(everything.max()) <= 1.0
    # every split image is a bilinear (half-pixel, edge-clamped) upsampling of one scikit-learn digit / 16
    digits = load_digits().images / 16.0
    reference = np.stack([resize(d, (16, 16), order=1, mode="edge", anti_aliasing=False) for d in digits])
    distances = np.abs(reference[None] - images.test[:5, 0].double().numpy()[:, None]).max(axis=(2, 3))
    assert distances.min(axis=1).max() < 1e-6
    # the three splits are disjoint and cover all 1,797 digits
    all_ref = torch.as_tensor(reference).flatten(1)
    matched = torch.cdist(everything.double().flatten(1), all_ref).argmin(1)
    assert len(set(matched.tolist())) == 1797


def test_digit_images_reject_bad_fractions():
    with pytest.raises(ValueError, match="validation_size \\+ test_size"):
        tb.load_digit_images(validation_size=0.5, test_size=0.5)
    with pytest.raises(ValueError, match="size"):
        tb.load_digit_images(size=4)


def test_gaussian_and_poisson_noise_have_their_moments_and_support():
    x = torch.full((200_000,), 0.6, dtype=torch.float64)
    y = tb.gaussian_noise(x, 0.2, generator=torch.Generator().manual_seed(0))
    assert float(y.mean()) == pytest.approx(0.6, abs=3e-3) and float(y.std()) == pytest.approx(0.2, rel=1e-2)
    zeta = 0.05
    y = tb.poisson_noise(x, zeta, generator=torch.Generator().manual_seed(0))
    counts = (y / zeta).round()
    torch.testing.assert_close(y, counts * zeta)  # multiples of zeta
    observed = np.bincount(counts.long().numpy(), minlength=40)[:40] / len(x)
    np.testing.assert_allclose(observed, stats.poisson.pmf(np.arange(40), 0.6 / zeta), atol=3e-3)


@pytest.mark.parametrize("k", [0.5, 10.0, 50.0])
def test_gamma_noise_is_gamma_with_mean_x_and_shape_k(k):
    x = torch.full((20_000,), 0.8, dtype=torch.float64)
    y = tb.gamma_noise(x, k, generator=torch.Generator().manual_seed(1))
    assert stats.kstest(y.numpy(), stats.gamma(k, scale=0.8 / k).cdf).pvalue > 1e-3


def test_noise_is_reproducible_from_its_generator_and_checks_its_input():
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    for family, level in [("gaussian", 0.1), ("poisson", 0.05), ("gamma", 10.0)]:
        a = tb.add_noise(x, family, level, generator=torch.Generator().manual_seed(5))
        b = tb.add_noise(x, family, level, generator=torch.Generator().manual_seed(5))
        assert torch.equal(a, b) and a.shape == x.shape and a.dtype == x.dtype
    with pytest.raises(ValueError, match="family"):
        tb.add_noise(x, "laplace", 0.1, generator=torch.Generator())
    with pytest.raises(ValueError, match="non-negative for Poisson"):
        tb.poisson_noise(x - 1, 0.1, generator=torch.Generator())
    with pytest.raises(ValueError, match="non-negative for Gamma"):
        tb.gamma_noise(x - 1, 10.0, generator=torch.Generator())
    with pytest.raises(ValueError, match="k"):
        tb.gamma_noise(x, 0.0, generator=torch.Generator())


class _Recording(torch.nn.Module):
    """A model that keeps its last output, to differentiate it after the loss is computed."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, v):
        self.output = self.inner(v)
        return self.output


def test_blind_spot_loss_is_j_invariant_and_matches_a_hand_computation():
    torch.manual_seed(0)
    model = _Recording(tb.denoiser_cnn(channels=8, layers=3).double())
    y = torch.rand(2, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    loss = tb.blind_spot_loss(model, y, generator=torch.Generator().manual_seed(3), spacing=4)
    a, b = torch.randint(0, 4, (2,), generator=torch.Generator().manual_seed(3)).tolist()
    mask = np.zeros((12, 12), dtype=bool)
    mask[a::4, b::4] = True
    grid = torch.as_tensor(mask)
    # J-invariance: the prediction at a masked pixel does not depend on that pixel's noisy value
    (grad,) = torch.autograd.grad(model.output[..., grid].sum(), y)
    assert float(grad[..., grid].abs().max()) == 0.0
    (plain,) = torch.autograd.grad(model(y)[..., grid].sum(), y)
    assert float(plain[..., grid].abs().max()) > 0  # without the mask it does
    # the masked pixels' inputs: the mean of the 8 neighbours (reflect padding), computed by scipy
    donut = np.ones((3, 3)) / 8
    donut[1, 1] = 0
    yn = y.detach().numpy()
    neighbours = np.stack([ndimage.convolve(img[0], donut, mode="mirror") for img in yn])[:, None]
    masked_input = torch.as_tensor(np.where(mask, neighbours, yn))
    expected = (model(masked_input) - y.detach())[..., grid].square().mean()
    torch.testing.assert_close(loss, expected)


def test_blind_spot_loss_rejects_a_spacing_below_three():
    with pytest.raises(ValueError, match="spacing"):
        tb.blind_spot_loss(tb.denoiser_cnn(), torch.rand(1, 1, 8, 8), generator=torch.Generator(), spacing=2)


def test_denoiser_cnn_maps_images_to_images_and_checks_its_sizes():
    model = tb.denoiser_cnn(channels=32, layers=4)
    assert model(torch.rand(3, 1, 16, 16)).shape == (3, 1, 16, 16)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model) == 4 and model[0].out_channels == 32
    with pytest.raises(ValueError, match="layers"):
        tb.denoiser_cnn(layers=1)


def test_classical_filters_match_scipy_and_scikit_image(images):
    from skimage.restoration import denoise_tv_chambolle

    y = tb.add_noise(images.test[:3], "gaussian", 0.2, generator=torch.Generator().manual_seed(0))
    smoothed = tb.gaussian_filter_denoise(y, 1.0)
    reference = ndimage.gaussian_filter(y[1, 0].double().numpy(), 1.0)
    np.testing.assert_allclose(smoothed[1, 0].numpy(), reference, atol=1e-6)
    tv = tb.tv_denoise(y, 0.1)
    np.testing.assert_allclose(tv[2, 0].numpy(), denoise_tv_chambolle(y[2, 0].double().numpy(), weight=0.1), atol=1e-6)
    assert float(tb.psnr(images.test[:3], smoothed).mean()) > float(tb.psnr(images.test[:3], y).mean())
    with pytest.raises(ValueError, match="weight"):
        tb.tv_denoise(y, 0.0)
    with pytest.raises(ValueError, match="sigma"):
        tb.gaussian_filter_denoise(y, -1.0)


def test_psnr_matches_scikit_image_per_image():
    from skimage.metrics import peak_signal_noise_ratio

    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(4, 1, 16, 16, generator=gen)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
    ours = tb.psnr(clean, noisy)
    reference = [peak_signal_noise_ratio(c.numpy(), n.numpy(), data_range=1.0) for c, n in zip(clean, noisy)]
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        tb.psnr(clean, noisy[:2])
