"""mini-flow: the shapes world's rectified-flow model, its training trick, and Epsilon or flow?

The committed model loads offline by name as a real `StableDiffusion3Pipeline`, runs through
`trace` pixel-identically to the plain pipeline, shares mini-shapes' VAE and text tower, draws
what a held-out prompt says (read back from pixels), and keeps its committed figures.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from diffusers import StableDiffusion3Pipeline

from explorer.engine import flow
from explorer.engine.capture import trace
from explorer.engine.models import FLOW_DIR, MINI_DIR, image_size, load_pipeline
from explorer.mini import data, judge
from explorer.mini.flow import parts
from explorer.mini.flow.train import sample_sigma
from explorer.studies import epsilon_or_flow as eof

PROMPT = "a large red circle in the centre on a white background"


@pytest.fixture(scope="module")
def pipes():
    return {
        "epsilon": load_pipeline("mini-shapes", "cpu"),
        "flow": load_pipeline("mini-flow", "cpu"),
    }


def test_one_zero_row_with_ln256_is_the_pipelines_256_zero_rows():
    """Training feeds 77 CLIP rows and one zero row with its key's logit raised by ln 256; the
    pipeline feeds 256 zero rows (no T5). The same function, on a random transformer."""
    torch.manual_seed(0)
    model = parts.build_transformer().eval()
    clip = torch.randn(2, parts.CLIP_TOKENS, 256)  # (B, 77, 256)
    embeds = torch.cat([clip, torch.zeros(2, parts.T5_ZEROS, 256)], 1)  # (B, 333, 256)
    assert parts.check_repeated_equivalence(model, embeds, torch.randn(2, 256)) < 1e-5
    x, t, pooled = torch.randn(2, 4, 16, 16), torch.full((2,), 500.0), torch.randn(2, 256)
    outputs = []
    for processor in (parts.RepeatedLastKey(1), parts.RepeatedLastKey(parts.T5_ZEROS)):
        model.set_attn_processor(processor)  # ln 1 = 0: one zero row as itself, which must differ
        with torch.no_grad():
            short = parts.short_sequence(embeds)  # (B, 78, 256)
            out = model(
                hidden_states=x, timestep=t, encoder_hidden_states=short, pooled_projections=pooled
            )
        outputs.append(out.sample)
    assert (outputs[0] - outputs[1]).abs().max() > 1e-3


def test_sigma_sampling_covers_the_line():
    sigma = sample_sigma(20_000, torch.Generator().manual_seed(0))
    assert 0 < float(sigma.min()) and float(sigma.max()) < 1
    assert abs(float(sigma.median()) - 0.5) < 0.02  # logit-normal(0, 1) is centred on σ = 0.5
    assert float((sigma < 0.05).float().mean()) > 0.004  # the uniform share reaches the ends


def test_straightness_of_a_line_and_of_an_arc():
    line = np.linspace(0, 1, 26)[:, None] * np.array([[3.0, 4.0]])  # (26, 2)
    assert eof.straightness(line) == pytest.approx(1.0)
    angle = np.linspace(0, math.pi / 2, 2001)
    arc = np.stack([np.cos(angle), np.sin(angle)], 1)  # DDIM's path for one picture
    assert eof.straightness(arc) == pytest.approx((math.pi / 2) / math.sqrt(2), rel=1e-5)


def test_mini_flow_loads_offline_as_an_sd3_pipeline(pipes, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = pipes["flow"]
    assert isinstance(pipe, StableDiffusion3Pipeline) and pipe.text_encoder_3 is None
    assert image_size(name="mini-flow") == image_size(name="mini-shapes") == (64, 64)
    alone = StableDiffusion3Pipeline.from_pretrained(
        FLOW_DIR, text_encoder_3=None, tokenizer_3=None
    )
    assert alone.transformer.config.num_layers == parts.TRANSFORMER["num_layers"]


def test_mini_flow_shares_mini_shapes_vae_and_text_tower(pipes):
    eps, fl = pipes["epsilon"], pipes["flow"]
    vae_a, vae_b = eps.vae.state_dict(), fl.vae.state_dict()
    assert vae_a.keys() == vae_b.keys() and all(torch.equal(vae_a[k], vae_b[k]) for k in vae_a)
    text = eps.text_encoder.state_dict()  # mini-shapes' CLIPTextModel
    for tower in (fl.text_encoder, fl.text_encoder_2):  # SD3's two towers: the same one twice
        own = {k.removeprefix("text_model."): v for k, v in tower.state_dict().items()}
        assert own.keys() - text.keys() == {"text_projection.weight"}
        assert all(torch.equal(text[k], own[k]) for k in text)
    assert fl.vae.config.scaling_factor == eps.vae.config.scaling_factor
    assert (MINI_DIR / "preview.json").read_text() == (FLOW_DIR / "preview.json").read_text()


def test_trace_of_mini_flow_is_the_plain_pipeline(pipes):
    pipe = pipes["flow"]
    t = trace(pipe, PROMPT, steps=8, guidance=5.0, seed=4)
    ref = pipe(
        PROMPT,
        num_inference_steps=8,
        guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(4),
    ).images[0]
    assert np.array_equal(np.asarray(ref), np.asarray(t.image))
    assert t.objective == "flow"
    s = t.sigmas.view(-1, 1, 1, 1)  # (T, 1, 1, 1)
    x_t = t.latents[:-1]  # (T, C, h, w)
    assert torch.allclose(t.x0_pred, flow.x0_from_velocity(x_t, t.velocity, s), atol=1e-5)


def test_mini_flow_draws_a_held_out_prompt():
    """Held-out captions at fixed seeds, read back from pixels: mostly right."""
    pipe = load_pipeline("mini-flow", "cpu")
    _, _, scenes = data.batch(data.heldout_seeds(8, 7000))
    hits = []
    for i, scene in enumerate(scenes):
        image = pipe(
            data.full_caption(scene),
            num_inference_steps=25,
            guidance_scale=5.0,
            generator=torch.Generator("cpu").manual_seed(i),
        ).images[0]
        read = judge.read(image)
        fields = ("background", "colour", "position")
        hits.append(all(getattr(read, f) == getattr(scene, f) for f in fields))
    assert sum(hits) >= 7, hits  # held-out: 99-100% of each over 200 prompts


def test_committed_figures_within_ten_points_of_mini_shapes():
    metrics = json.loads((FLOW_DIR / "metrics.json").read_text())
    shapes = json.loads((MINI_DIR.parent / "metrics.json").read_text())
    for k in ("background", "colour", "position", "shape"):
        assert metrics[f"prompt_{k}"] >= shapes[f"prompt_{k}"] - 0.10, k
    assert metrics["prompts_evaluated"] == 200


def test_epsilon_or_flow_from_one_noise(pipes):
    r = eof.run(pipes, PROMPT, seed=2, few=(1, 4))
    a, b = r.runs["epsilon"], r.runs["flow"]
    assert torch.equal(a.latents[0], b.latents[0])  # one seed, one starting noise
    assert (a.objective, b.objective) == ("epsilon", "flow")
    assert a.num_steps == b.num_steps == eof.STEPS
    for m in eof.MODELS:
        assert r.straightness[m] == pytest.approx(eof.straightness(r.runs[m].latents.numpy()))
        assert r.straightness[m] >= 1.0
        assert len(r.few[m]) == 2
        assert r.distance[m][0] == pytest.approx(eof.pixel_distance(r.few[m][0], r.reference[m]))
    four = trace(pipes["flow"], PROMPT, steps=4, guidance=5.0, seed=2, spacing="trailing")
    assert np.array_equal(np.asarray(four.image), np.asarray(r.few["flow"][1]))
    shift = pipes["flow"].scheduler.config.shift  # the trailing grid: the last of 4 steps
    last = flow.shifted_sigma(torch.tensor(0.25), shift)  # starts at 1/4, shifted (not 0.004)
    torch.testing.assert_close(four.sigmas[-1].float(), last)
    tmap = eof.paths_map(r)
    assert [len(p) for p in tmap.paths] == [eof.STEPS + 1, eof.STEPS + 1]
    assert np.allclose(tmap.paths[0][0], tmap.paths[1][0])  # one start on the map


def test_the_section_handler_answers_and_refuses_an_empty_prompt():
    from explorer.inputs.errors import VisitorError
    from explorer.ui.tabs import epsilon_or_flow as section

    with pytest.raises(VisitorError, match="type a prompt"):
        section.run_both("   ", 0, progress=lambda *a, **k: None)
    out = section.run_both(PROMPT, 1, progress=lambda *a, **k: None)
    rows = out["table"].split("\n\n")[0].splitlines()
    assert len(rows) == 2 + 1 + len(eof.FEW_STEPS)  # header, rule, straightness, step counts
    assert [len(out[m]) for m in eof.MODELS] == [len(eof.FEW_STEPS) + 1] * 2
    assert "Straightness" in out["status"]


def test_the_app_refuses_to_serve_a_flow_model_with_a_message(capsys):
    from explorer.ui import server

    assert server.flow_model_refusal(load_pipeline("mini-shapes", "cpu")) is None
    message = server.flow_model_refusal(load_pipeline("mini-flow", "cpu"))
    assert "Epsilon or flow?" in message and "mini-shapes" in message


def test_the_command_line_traces_mini_flow_with_its_own_sampler(tmp_path):
    from explorer import cli
    from explorer.engine.tracefile import Trace

    out = tmp_path / "run"
    assert (
        cli.main(["trace", PROMPT, "--model", "mini-flow", "--steps", "6", "--out", str(out)]) == 0
    )
    t = Trace.load(out)
    assert t.objective == "flow" and t.num_steps == 6
    assert t.settings["scheduler"] == "flow_euler"
