"""DDIM inversion checked against an analytic noise predictor."""

import torch
from diffusers import DDIMScheduler

from flipsketch.inversion import ddim_invert, ddim_sample
from flipsketch.models.tiny import MODELSCOPE_SCHEDULER


def gaussian_eps(mu: torch.Tensor, sigma: float, alphas: torch.Tensor):
    """The exact optimal noise predictor when the data is N(mu, sigma^2 I)."""

    def eps(x, t):
        a = alphas[t].double()
        return (((1 - a).sqrt() * (x.double() - a.sqrt() * mu)) / (a * sigma**2 + 1 - a)).to(x.dtype)

    return eps


def _round_trip(steps, model_timestep):
    sched = DDIMScheduler(**MODELSCOPE_SCHEDULER)
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(1, 4, 1, 8, 8, generator=g, dtype=torch.float64)
    x0 = mu + 0.5 * torch.randn(1, 4, 1, 8, 8, generator=g, dtype=torch.float64)
    eps = gaussian_eps(mu, 0.5, sched.alphas_cumprod)
    zt = ddim_invert(eps, x0, sched.config, steps, model_timestep)
    back = ddim_sample(eps, zt, sched, steps)
    return float((back - x0).norm() / x0.norm()), zt


def point_mass_eps(x0: torch.Tensor, alphas: torch.Tensor):
    """The exact noise predictor when the data is the single point x0."""
    a = alphas.double()
    return lambda x, t: (x - a[t].sqrt() * x0) / (1 - a[t]).sqrt()


def test_inversion_reconstructs_with_an_exact_predictor():
    sched = DDIMScheduler(**MODELSCOPE_SCHEDULER)
    x0 = torch.randn(1, 4, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eps = point_mass_eps(x0, sched.alphas_cumprod)
    zt = ddim_invert(eps, x0, sched.config, 50, "input")
    back = ddim_sample(eps, zt, sched, 50)
    assert float((back - x0).norm() / x0.norm()) < 1e-3
    assert float((zt - x0).norm() / x0.norm()) > 0.5  # it really moved to t = 961
    # the official/diffusers convention (UNet at the target timestep) is measurably worse
    zt_t = ddim_invert(eps, x0, sched.config, 50, "target")
    err_t = float((ddim_sample(eps, zt_t, sched, 50) - x0).norm() / x0.norm())
    assert err_t > 1e-3


def test_inversion_ends_at_the_first_denoising_timestep():
    sched = DDIMScheduler(**MODELSCOPE_SCHEDULER)
    seen = []
    ddim_invert(
        lambda x, t: seen.append(t) or torch.zeros_like(x),
        torch.zeros(1, 4, 1, 2, 2),
        sched.config,
        25,
        "target",
    )
    sched.set_timesteps(25)
    assert seen == sorted(seen) and seen[-1] == int(sched.timesteps[0]) == 961


def test_inversion_error_shrinks_with_more_steps():
    coarse, _ = _round_trip(5, "input")
    fine, _ = _round_trip(50, "input")
    assert fine < coarse


def test_gaussian_data_round_trip_is_first_order():
    # with a non-degenerate data distribution DDIM's discretisation error is O(1/steps)
    err25, _ = _round_trip(25, "input")
    err50, _ = _round_trip(50, "input")
    assert err50 < 0.05 and 1.5 < err25 / err50 < 2.5
    _, zt = _round_trip(50, "input")
    assert zt.std() > 0.5  # Gaussian data: the latent really went to noise
