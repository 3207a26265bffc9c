"""Timestep spacing (issue 24, "few-step runs teach the right lesson"): the Mini models space
their steps "trailing", so one step starts at t = 999 and its x0 is the blurry average; every
spacing keeps the capture identical to the plain pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from explorer.engine.capture import trace
from explorer.engine.models import MINI_DIR, THINGS_DIR
from explorer.engine.schedulers import SCHEDULERS, SPACINGS, config_spacing

PROMPT = "a red circle"


def plain(pipe, name, spacing, steps, guidance):
    """The reference: diffusers' own pipeline with `Cls.from_config(config, timestep_spacing=…)`."""
    scheduler = SCHEDULERS[name].from_config(pipe.scheduler.config, timestep_spacing=spacing)
    ref = StableDiffusionPipeline(
        **{**pipe.components, "scheduler": scheduler}, requires_safety_checker=False
    )
    ref.set_progress_bar_config(disable=True)
    gen = torch.Generator("cpu").manual_seed(0)
    out = ref(PROMPT, num_inference_steps=steps, guidance_scale=guidance, generator=gen)
    return out.images[0], scheduler


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_spacing_keeps_the_image_identical(tiny_pipe, name, spacing):
    t = trace(tiny_pipe, PROMPT, steps=3, guidance=5.0, scheduler=name, spacing=spacing)
    ref, scheduler = plain(tiny_pipe, name, spacing, 3, 5.0)
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))
    assert t.settings["scheduler_config"]["timestep_spacing"] == spacing
    if name != "pndm":  # PNDM repeats a timestep in its warm-up
        assert [int(x) for x in t.timesteps] == [int(x) for x in scheduler.timesteps]


def test_the_mini_models_space_their_steps_trailing():
    for folder in (MINI_DIR, THINGS_DIR):
        path = folder / "scheduler" / "scheduler_config.json"
        if path.is_file():
            assert json.loads(path.read_text())["timestep_spacing"] == "trailing", folder


def test_without_spacing_the_config_decides(mini_pipe):
    assert config_spacing(mini_pipe) == "trailing"
    t = trace(mini_pipe, PROMPT, steps=1, guidance=7.5)
    assert int(t.timesteps[0]) == 999
    leading = trace(mini_pipe, PROMPT, steps=1, guidance=7.5, spacing="leading")
    assert int(leading.timesteps[0]) == 1  # diffusers' default: t = 0 + steps_offset


def _low_frequency_share(img: np.ndarray, keep: int = 8) -> float:
    """Share of the picture's (mean-removed) spectral energy within `keep` cycles per picture of
    zero: at 64 px and keep 8, the features larger than about 8 px."""
    gray = img.astype(np.float64).mean(axis=2)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(gray - gray.mean()))) ** 2
    h, w = spec.shape
    yy, xx = np.mgrid[:h, :w]
    low = (np.abs(yy - h // 2) <= keep) & (np.abs(xx - w // 2) <= keep)
    return float(spec[low].sum() / spec.sum())


@pytest.mark.parametrize(
    "prompt, seed",
    [
        ("a large red circle on a blue background", 0),  # the page's default prompt
        ("a large white cross on a red background", 4),  # the Examples row "1 step"
    ],
)
def test_one_trailing_step_shows_the_blurry_average(mini_pipe, prompt, seed):
    one = trace(mini_pipe, prompt, steps=1, guidance=7.5, seed=seed)
    full = trace(mini_pipe, prompt, steps=50, guidance=7.5, seed=seed)
    assert int(one.timesteps[0]) >= 900
    one.attach_decoder(mini_pipe.vae)
    x0 = np.asarray(one.decode(steps=[0], what="x0", method="vae")[0])
    final = np.asarray(full.image)
    assert _low_frequency_share(x0) >= _low_frequency_share(final)
    assert x0.std() < final.std()  # less contrast: an average, not a drawing
    leading = trace(mini_pipe, prompt, steps=1, guidance=7.5, seed=seed, spacing="leading")
    noise = np.asarray(leading.attach_decoder(mini_pipe.vae).decode([0], "x0", "vae")[0])
    assert _low_frequency_share(noise) < _low_frequency_share(x0)  # t = 1: decoded noise


def test_the_page_and_api_take_a_spacing_and_warn_about_few_leading_steps(tiny_pipe):
    from conftest import tab_client

    assert config_spacing(tiny_pipe) == "leading"  # diffusers' default, as most checkpoints
    with tab_client(tiny_pipe, ["explorer.ui.tabs.generate"]) as client:
        info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        names = [p["parameter_name"] for p in info["/generate"]["parameters"]]
        assert names[-1] == "spacing"
        few = client.predict(prompt="a red circle", steps=1, api_name="/generate")[1]
        assert "with “leading” spacing 1 step starts at t = 1, not 999" in few, few
        assert "still 100% picture" in few
        fixed = client.predict(
            prompt="a red circle", steps=1, spacing="trailing", api_name="/generate"
        )
        assert "spacing" not in fixed[1] and fixed[1].startswith("Done: 1 step in ")
        with pytest.raises(Exception, match="unknown spacing 'sideways'; choose one of: model"):
            client.predict(prompt="a red circle", spacing="sideways", api_name="/generate")


def test_the_steps_experiment_runs_with_the_spacing_asked_for(tiny_pipe):
    from explorer.studies.experiments import compare_steps

    r = compare_steps(tiny_pipe, PROMPT, [1, 3], spacing="trailing")
    assert [int(run.trace.timesteps[0]) for run in r.runs] == [999, 999]
    r = compare_steps(tiny_pipe, PROMPT, [1], spacing="leading")
    assert int(r.runs[0].trace.timesteps[0]) == 1


def test_four_step_extrapolation_is_why_lms_drifts_at_high_guidance(mini_pipe):
    """The page's note on pndm/lms, checked against plain diffusers: at guidance 7.5 LMS of
    order 2 lands where DDIM does, of order 4 (its default, and PNDM's) far from it; at
    guidance 3 the orders agree."""
    from diffusers import LMSDiscreteScheduler

    from explorer.inputs.controls import validate_run
    from explorer.ui.notes import prompt_notes

    def lms(order: int, guidance: float) -> np.ndarray:
        sched = LMSDiscreteScheduler.from_config(mini_pipe.scheduler.config)
        step = sched.step
        sched.step = lambda *a, **k: step(*a, **{**k, "order": order})
        pipe = StableDiffusionPipeline(
            **{**mini_pipe.components, "scheduler": sched}, requires_safety_checker=False
        )
        pipe.set_progress_bar_config(disable=True)
        gen = torch.Generator("cpu").manual_seed(0)
        out = pipe(PROMPT, num_inference_steps=25, guidance_scale=guidance, generator=gen)
        return np.asarray(out.images[0], np.float64)

    ddim = np.asarray(trace(mini_pipe, PROMPT, steps=25, guidance=7.5).image, np.float64)
    assert np.abs(lms(2, 7.5) - ddim).mean() < 3 < 30 < np.abs(lms(4, 7.5) - ddim).mean()
    assert np.abs(lms(4, 3.0) - lms(2, 3.0)).mean() < 3
    note = " ".join(prompt_notes(mini_pipe, validate_run(PROMPT, scheduler="lms", guidance=7.5)))
    assert "4th-order multistep solver" in note and "plain diffusers" in note
    assert not prompt_notes(mini_pipe, validate_run(PROMPT, scheduler="lms", guidance=3.0))
