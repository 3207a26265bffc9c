"""Chart functions and step metrics on synthetic runs: no model, no UI."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from explorer.charts import metrics, run_figures, steps
from explorer.engine.tracefile import Trace
from explorer.studies import anatomy


def synthetic_x0(T: int = 10, size: int = 16, seed: int = 0) -> np.ndarray:
    """x0 predictions that settle coarse first: low frequencies reach the final early."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    coarse = np.sin(2 * np.pi * xx)[None]  # (1, h, w)
    fine = rng.standard_normal((1, size, size))
    out = []
    for i in range(T):
        progress = (i + 1) / T
        out.append(coarse * min(1.0, 3 * progress) + fine * progress**3)
    return np.stack(out)  # (T, 1, h, w)


def synthetic_trace(T: int = 6, guided: bool = True) -> Trace:
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(T + 1, 4, 8, 8, generator=g)
    eps = torch.randn(T, 4, 8, 8, generator=g)
    return Trace(
        timesteps=torch.linspace(900, 100, T),
        alphas_cumprod=torch.linspace(0.05, 0.95, T),
        sigmas=None,
        latents=latents,
        model_input=latents[:T].clone(),
        noise_pred=eps,
        noise_uncond=eps * 0.9 if guided else None,
        noise_text=eps * 1.1 if guided else None,
        x0_pred=torch.randn(T, 4, 8, 8, generator=g),
        step_coeffs=torch.tensor([[0.99, -0.1]] * T),
        prompt_tokens=["<|startoftext|>", "red", "<|endoftext|>", "<|endoftext|>"],
        prompt_embeds=torch.randn(4, 16, generator=g),
        negative_embeds=torch.randn(4, 16, generator=g) if guided else None,
        image=None,
        settings={"prompt": "red", "steps": T, "vae_scale_factor": 8, "height": 64, "width": 64},
        seconds=[0.01] * T,
        preview_factors=torch.randn(4, 3, generator=g),
        preview_bias=torch.zeros(3),
    )


def test_snr_rises_with_alpha_bar():
    s = metrics.snr(np.array([0.01, 0.5, 0.99]))
    assert np.all(np.diff(s) > 0)
    assert s[1] == pytest.approx(1.0)


def test_x0_change_and_distance_to_final():
    x0 = np.array([[0.0], [3.0], [4.0]])[:, None, None]  # (3, 1, 1, 1)
    assert metrics.x0_change(x0).tolist() == [0.0, 3.0, 1.0]
    assert metrics.distance_to_final(x0).tolist() == [4.0, 1.0, 0.0]


def test_band_settling_low_frequencies_settle_first():
    settled = metrics.band_settling(synthetic_x0(), bands=4)
    assert settled.shape == (10, 4)
    assert np.all((0 <= settled) & (settled <= 1))
    np.testing.assert_allclose(settled[-1], 1.0)  # the last step is the final
    assert settled[3, 0] > settled[3, 3]  # coarse ahead of fine midway


def test_band_settling_constant_run_is_settled():
    x0 = np.ones((5, 4, 8, 8))
    np.testing.assert_allclose(metrics.band_settling(x0), 1.0)


def test_guidance_norms_difference():
    u, c = np.zeros((2, 1, 2, 2)), np.ones((2, 1, 2, 2))
    n = metrics.guidance_norms(u, c, 7.5 * c)
    assert n["difference ε_c − ε_u"].tolist() == [2.0, 2.0]
    assert n["guided ε"][0] == pytest.approx(15.0)


@pytest.mark.parametrize("guided", [True, False])
def test_run_figures_from_a_trace(guided):
    figs = run_figures(synthetic_trace(guided=guided))
    assert set(figs) == {"schedule", "latent", "frequency", "coefficients", "guidance"}
    for fig in figs.values():
        assert isinstance(fig, go.Figure)
        assert all(len(trace.x) == 6 for trace in fig.data)
        fig.to_json()  # serializable for gradio
    assert len(figs["guidance"].data) == (4 if guided else 1)


def test_single_step_run_charts():
    fig = steps.frequency_figure(synthetic_x0(T=1))
    assert len(fig.data) == 4


def test_step_parts_reproduce_the_step():
    t = synthetic_trace()
    a, b = 0.9, -0.2
    t.step_coeffs[:] = torch.tensor([a, b])
    t.latents[3] = a * t.latents[2] + b * t.noise_pred[2]
    p = anatomy.step_parts(t, 2)
    assert (p.a, p.b) == pytest.approx((a, b))
    assert p.residual == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(p.removed, b * t.noise_pred[2])
    with pytest.raises(ValueError, match="out of range"):
        anatomy.step_parts(t, 6)


def test_guidance_parts_and_inventory():
    t = synthetic_trace()
    g = anatomy.guidance_parts(t, 0)
    torch.testing.assert_close(g.difference, t.noise_text[0] - t.noise_uncond[0])
    assert anatomy.guidance_parts(synthetic_trace(guided=False), 0) is None
    rows = {r["name"]: r for r in anatomy.tensor_inventory(t)}
    assert rows["latents"]["shape"] == "7 × 4 × 8 × 8"
    assert rows["latents"]["bytes"] == 7 * 4 * 8 * 8 * 4
    assert "batch of 2" in rows["model_input"]["what it holds"]
    assert all(r["what it holds"] for r in rows.values())
    assert anatomy.compression(t)["ratio"] == pytest.approx(64 * 64 * 3 / 256)


def test_one_step_run_has_metrics():
    x0 = np.ones((1, 4, 8, 8))  # a 1-step run: nothing to difference
    assert metrics.x0_change(x0).tolist() == [0.0]
    assert metrics.distance_to_final(x0).tolist() == [0.0]
