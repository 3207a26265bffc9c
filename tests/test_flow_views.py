"""The views in a flow model's own terms (issue 27): a tiny SD3 trace's step view quotes σ_t and
σ_next and its x_next = x_t + (σ_next − σ_t)·v is the trace's own; the tensors panel names v (and
SDXL's pooled vector and time ids); saved flow and SDXL runs open in every view; the forward
process of a flow pipeline is x_t = σ·ε + (1 − σ)·x0 exactly; epsilon runs read as before."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import FIXTURES, tab_client
from gradio_client import handle_file
from PIL import Image

from explorer.charts import run_figures, sigma_figure
from explorer.engine import flow
from explorer.engine.capture import trace
from explorer.engine.runzip import pack
from explorer.engine.tiny_flow import tiny_sd3_pipe, tiny_sdxl_pipe
from explorer.studies import anatomy, forward, latent_space
from explorer.ui.report import report_html
from explorer.ui.stepterms import LABELS
from explorer.ui.stepviews import RUN_VIEWS, STEP_VIEWS, RunView, run_values, step_values
from explorer.ui.tabs import forward as forward_tab
from explorer.ui.tabs.generate import open_run

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def sd3():
    return tiny_sd3_pipe()


@pytest.fixture(scope="module")
def sd3_trace(sd3):
    return trace(sd3, PROMPT, steps=4, guidance=3.0, seed=0)


@pytest.fixture(scope="module")
def sdxl_trace():
    return trace(tiny_sdxl_pipe(), PROMPT, steps=3, guidance=5.0, seed=0)


def plain(value):
    """A view's value, unwrapped from the update that relabels it."""
    if isinstance(value, dict) and value.get("__type__") == "update":
        return value["value"]
    return value


def test_the_step_view_quotes_sigma_and_reproduces_the_euler_step(sd3_trace):
    t = sd3_trace
    view = RunView.of(t, method="preview")
    schedule = t.settings["sigma_schedule"]
    for i in range(t.num_steps):
        values = step_values(view, i + 1)
        s, s_next = float(t.sigmas[i]), schedule[i + 1]
        assert f"σ_t = {s:.4f}" in values["step_info"]
        assert f"σ_next = {s_next:.4f}" in values["step_info"]
        text = values["equation"]
        assert "x_next = x_t + (σ_next − σ_t) · v" in text and "ε" not in text.split("\n")[-1]
        assert f"**{s_next:.4f}** − **{s:.4f}**" in text and f"**{s_next - s:+.4f}**" in text
        p = anatomy.step_parts(t, i)
        assert (p.sigma, p.sigma_next) == (pytest.approx(s), pytest.approx(s_next))
        x_next = t.latents[i] + (s_next - s) * t.velocity[i]  # (C, h, w)
        torch.testing.assert_close(x_next, t.latents[i + 1], atol=1e-5, rtol=0)
        torch.testing.assert_close(p.moved, (s_next - s) * t.velocity[i])
        assert p.euler_residual < 1e-5 and "exactly" in text
        assert values["use_eps"]["label"] == LABELS["flow"]["use_eps"]
        assert values["use_next"]["label"] == "x_next = x_t + (σ_next − σ_t)·v"
        for name in ("use_xt", "use_eps", "use_removed", "use_next", "use_x0"):
            assert isinstance(plain(values[name]), Image.Image)
    assert "SNR ((1 − σ)/σ)² = 0 " in step_values(view, 1)["step_info"]  # σ = 1: SNR 0


def test_guidance_is_taken_apart_in_velocities(sd3_trace):
    values = step_values(RunView.of(sd3_trace, method="preview"), 2)
    assert "‖unconditional v_u‖" in values["guidance_norms"] and "ε" not in values["guidance_norms"]
    assert values["guidance_norms"].startswith("v = v_u + g·(v_c − v_u), g = 3: ")
    g = anatomy.guidance_parts(sd3_trace, 1)
    torch.testing.assert_close(g.uncond, sd3_trace.velocity_uncond[1])
    torch.testing.assert_close(g.guided, sd3_trace.velocity[1])
    assert values["g_diff"]["label"] == "v_c − v_u: the prompt's push"
    unguided = trace(tiny_sd3_pipe(), PROMPT, steps=2, guidance=1.0)
    off = step_values(RunView.of(unguided, method="preview"), 1)["guidance_norms"]
    assert "the transformer ran once per step" in off


def test_the_tensors_panel_names_v(sd3_trace):
    rows = {r["name"]: r["what it holds"] for r in anatomy.tensor_inventory(sd3_trace)}
    assert "velocity v ≈ ε − x_0 the transformer predicted" in rows["velocity"]
    assert "v_u" in rows["velocity_uncond"] and "v_c" in rows["velocity_text"]
    assert "x_t − σ·v" in rows["x0_pred"] and "x_t + (1 − σ)·v" in rows["noise_pred"]
    assert "σ = 1" in rows["alphas_cumprod"] and "shifted by 3" in rows["sigmas"]
    assert all(rows.values()), [name for name, words in rows.items() if not words]
    panel = run_values(RunView.of(sd3_trace, method="preview"))["tensors"]
    assert "- **velocity** `4 × 16 × 8 × 8`" in panel


def test_an_sdxl_panel_lists_its_pooled_vector_and_time_ids(sdxl_trace):
    rows = {r["name"]: r["what it holds"] for r in anatomy.tensor_inventory(sdxl_trace)}
    assert "pooled vector of 40 numbers" in rows["pooled_embeds"]
    assert rows["negative_pooled_embeds"]
    ids = ", ".join(f"{float(v):g}" for v in sdxl_trace.time_ids)
    assert f"time ids ({ids})" in rows["time_ids"]
    assert "80 = 32 + 48 numbers" in rows["prompt_embeds"]
    assert all(rows.values())
    values = run_values(RunView.of(sdxl_trace, method="preview"))
    assert "ᾱ_t = " in values["step_info"]  # SDXL predicts noise: epsilon's terms
    assert values["use_eps"]["label"] == "ε predicted"


def test_flow_charts_show_sigma_and_survive_sigma_one(sd3_trace):
    figures = run_figures(sd3_trace)
    schedule = figures["schedule"]
    sigma, _, snr = (np.asarray(d.y, dtype=float) for d in schedule.data)
    np.testing.assert_allclose(sigma, sd3_trace.sigmas.numpy(), rtol=1e-6)
    assert np.isnan(snr[0]) and np.isfinite(snr[1:]).all()  # σ = 1: SNR 0, off the log axis
    steps = np.asarray(figures["coefficients"].data[0].y)
    np.testing.assert_allclose(steps, np.diff(sd3_trace.settings["sigma_schedule"]), rtol=1e-6)
    assert [d.name for d in figures["guidance"].data][0] == "unconditional v_u"
    ends = sigma_figure(np.array([1.0, 0.5, 0.0]))  # SNR 0 and ∞: both off the log axis
    assert np.isnan(np.asarray(ends.data[2].y, dtype=float)[[0, 2]]).all()


@pytest.mark.parametrize("which", ["sd3", "sdxl"])
def test_a_saved_flow_or_sdxl_run_opens_in_every_view(which, sd3_trace, sdxl_trace, tmp_path):
    t = sd3_trace if which == "sd3" else sdxl_trace
    served = SimpleNamespace(name_or_path="some/other-model", vae=None)
    ctx = SimpleNamespace(pipe=lambda: served)
    out = open_run(ctx, str(pack(t, tmp_path)))
    assert set(RUN_VIEWS) | set(STEP_VIEWS) <= set(out)
    assert "cheap linear preview" in out["status"]
    assert ("flow model's run" in out["status"]) == (which == "sd3")
    assert ("grey" in out["status"]) == (which == "sd3")  # 16 channels: no colour map
    view = out["state"]
    for step in range(1, t.num_steps + 1):
        values = step_values(view, step)
        assert all(plain(values[n]) is not None for n in ("use_xt", "use_eps", "use_next"))
    if which == "sd3":
        assert "x_next = x_t + (σ_next − σ_t)" in out["equation"]
        assert "preview (grey: no colour map for 16 channels)" in out["step_info"]


def test_a_flow_report_speaks_of_sigma_and_v(sd3_trace):
    page = report_html(sd3_trace, method="preview")
    assert "<th>σ_t</th>" in page and f"<td>{float(sd3_trace.sigmas[1]):.4f}</td>" in page
    assert "Flow schedule: σ_t" in page and "the two velocities v_u, v_c" in page
    assert "ε = x_t + (1 − σ)·v: the noise each step&#x27;s v implies" in page


def test_the_page_opens_a_saved_flow_run(mini_pipe, sd3_trace, tmp_path):
    """Through the served app: the relabelled views survive gradio's own postprocessing."""
    with tab_client(mini_pipe, ["explorer.ui.tabs.generate"]) as client:
        out = client.predict(handle_file(str(pack(sd3_trace, tmp_path))), api_name="/open_run")
    text = "\n".join(str(o) for o in out)
    assert "flow model's run" in out[1]
    assert "x_next = x_t + (σ_next − σ_t) · v" in text and "velocity v ≈ ε − x_0" in text


def test_the_forward_process_of_a_flow_model_is_the_straight_line(sd3):
    image = Image.new("RGB", (64, 64), (200, 40, 40))
    ts = [0, 250, 500, 999]
    r = forward.forward_process(sd3, image, ts, seed=3)
    torch.testing.assert_close(r.x0, latent_space.encode(sd3.vae, image), rtol=0, atol=0)
    noise = torch.randn(r.x0.shape, generator=torch.Generator("cpu").manual_seed(3))
    assert torch.equal(r.noise, noise)
    for t, s in zip(ts, r.steps):
        assert s.sigma == t / 1000
        assert torch.equal(s.latent, s.sigma * noise + (1 - s.sigma) * r.x0)
        assert s.alpha_bar == pytest.approx(flow.equivalent_alpha_bar(s.sigma))
        if s.sigma > 0:
            assert s.snr == pytest.approx(((1 - s.sigma) / s.sigma) ** 2)
    assert r.steps[0].snr == float("inf") and r.steps[0].snr_db == float("inf")
    table = forward_tab.snr_table(r)
    assert "σ = t/1000" in table and "| 500 | 0.5000 | 0.5000 | 1 |" in table


def test_the_forward_process_of_an_epsilon_model_keeps_alpha_bar(tiny_pipe):
    r = forward.forward_process(tiny_pipe, Image.new("RGB", (64, 64)), [10, 500], seed=0)
    assert all(s.sigma is None for s in r.steps)
    assert forward_tab.snr_table(r).startswith("| t | ᾱ_t (signal share)")


def test_epsilon_views_read_as_before(mini_pipe):
    """The texts of a mini-shapes run, as the views gave them before flow runs had their own."""
    golden = json.loads((FIXTURES / "epsilon_views.json").read_text())
    assert Path(mini_pipe.name_or_path).name == "model"  # mini-shapes
    t = trace(mini_pipe, "a red circle", steps=4, guidance=7.5, seed=0, scheduler="ddim")
    view = RunView.of(t, method="preview")
    values = {k: plain(v) for k, v in run_values(view).items()}
    for key in ("architecture", "tokens", "tensors"):
        assert values[key] == golden[key], key
    for step in range(1, 5):
        now = step_values(view, step)
        for key in ("step_info", "equation", "guidance_norms", "compression"):
            assert now[key] == golden[f"{key}@{step}"], (key, step)
        assert now["use_eps"]["label"] == "ε predicted"
    for name, title in golden["figures"].items():
        figure = values[f"plot_{name}"]
        assert figure.layout.title.text == title
        assert [d.name for d in figure.data] == golden["figure_names"][name]
