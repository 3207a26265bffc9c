"""The guided tour: every stop's sentences quote numbers recomputed here from the Trace (and,
where one exists, from a plain diffusers call); predictions are answered from the run; the tab's
handlers walk all thirteen stops and open each in its tab."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.charts.metrics import band_settling
from explorer.studies import tour, tour_stops
from explorer.studies.distances import pixel_distance
from explorer.ui import tour_text

PROMPT = "a large red circle on a blue background"
CAPTIONS = [PROMPT, "a green triangle, white background, center", "a yellow star on black"]


@pytest.fixture(scope="module")
def walked(mini_pipe):
    """A tour on the embedded model with every stop's figures computed."""
    t = tour.start(mini_pipe, PROMPT, seed=3, captions=CAPTIONS, settling=band_settling)
    return t, {key: t.facts(key, mini_pipe) for key in tour.STOPS}


def test_thirteen_stops_in_the_article_order_each_with_words_and_a_tab():
    assert len(tour.STOPS) == 13 and list(tour.STOPS) == list(tour_text.STOPS)
    assert list(tour.STOPS) == list(tour_stops.FACTS)
    assert len({s.title for s in tour_text.STOPS.values()}) == 13


def test_the_run_is_the_plain_pipeline_s_picture(walked, mini_pipe):
    t, _ = walked
    plain = mini_pipe(
        PROMPT,
        num_inference_steps=25,
        guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(3),
    ).images[0]
    assert np.array_equal(np.asarray(plain), np.asarray(t.trace.image))


def test_tensor_and_step_sentences_quote_the_trace(walked):
    t, f = walked
    tr = t.trace
    C, h, w = tr.latents.shape[1:]
    text = tour_text.sentences("tensors", f["tensors"])
    assert f"{C} × {h} × {w} = {C * h * w:,} numbers" in text
    assert f"{tr.prompt_embeds.shape[0]} vectors of {tr.prompt_embeds.shape[1]}" in text
    assert "batch of 2" in text  # guidance 5 doubles the UNet's batch

    i = tr.num_steps // 2
    a, b = (float(v) for v in tr.step_coeffs[i])
    text = tour_text.sentences("noise", f["noise"])
    assert f"step {i + 1} of {tr.num_steps}" in text
    assert f"ᾱ = {float(tr.alphas_cumprod[i]):.3f}" in text and f"{a:.3f}·x_t" in text
    assert f"{abs(b):.3f}·ε" in text
    # the coefficients really make the step: x_(t-1) = a x_t + b eps (DDIM is exact)
    made = a * tr.latents[i] + b * tr.noise_pred[i]
    assert torch.allclose(made, tr.latents[i + 1], atol=1e-4)

    alpha = float(tr.alphas_cumprod[2])
    text = tour_text.sentences("coarse", f["coarse"])
    assert f"ᾱ = {alpha:.3f}" in text and f"{1 - alpha:.0%} of x_t's power" in text


def test_guidance_and_norm_sentences_quote_the_trace(walked):
    t, f = walked
    tr = t.trace
    i = tr.num_steps // 2
    push = (tr.noise_text[i] - tr.noise_uncond[i]).norm()
    uncond = tr.noise_uncond[i].norm()
    text = tour_text.sentences("guidance", f["guidance"])
    assert f"|ε_u| = {uncond:.1f}" in text and f"|ε_c − ε_u| = {push:.2f}" in text
    assert f"{push / uncond:.1%} as long" in text
    # the guided noise is ε_u + g (ε_c − ε_u)
    guided = tr.noise_uncond[i] + 5.0 * (tr.noise_text[i] - tr.noise_uncond[i])
    assert torch.allclose(guided, tr.noise_pred[i], atol=1e-4)

    text = tour_text.sentences("norms", f["norms"])
    assert f"start token's is {tr.prompt_embeds[0].norm():.1f} long" in text


def test_predicted_outline_step_is_where_x0_first_points_at_the_final(walked):
    t, f = walked
    x = t.trace.x0_pred.flatten(1).numpy().astype(np.float64)  # (T, n)
    end = t.trace.latents[-1].flatten().numpy().astype(np.float64)
    cos = x @ end / (np.linalg.norm(x, axis=1) * np.linalg.norm(end))
    first = int(np.argmax(cos >= tour_stops.OUTLINE_COSINE)) + 1
    assert f["jump"]["outline_step"] == first
    assert f"{cos[0]:.2f} (cosine)" in tour_text.sentences("jump", f["jump"])
    said = tour_text.reveal("jump", f["jump"], first)
    assert f"**Step {first}**" in said and "exactly right" in said
    assert "off by 2 steps" in tour_text.reveal("jump", f["jump"], first + 2)
    assert tour_text.reveal("jump", f["jump"], None).startswith("Pick an answer")


def test_coarse_settles_first_as_the_frequency_chart_measures(walked):
    t, f = walked
    settled = band_settling(t.trace.x0_pred.numpy())
    coarse = int(np.argmax(settled[:, 0] >= tour_stops.SETTLED)) + 1
    fine = int(np.argmax(settled[:, -1] >= tour_stops.SETTLED)) + 1
    assert (f["coarse"]["coarse_step"], f["coarse"]["fine_step"]) == (coarse, fine)
    right = "coarse" if coarse < fine else ("fine" if fine < coarse else "both at once")
    assert f["coarse"]["settles_first"] == right
    assert tour_text.reveal("coarse", f["coarse"], right).startswith("**Right.**")
    wrong = next(c for c in ("coarse", "fine", "both at once") if c != right)
    assert tour_text.reveal("coarse", f["coarse"], wrong).startswith("**Not this time.**")


def test_doubled_embedding_matches_a_plain_pipeline_call_with_doubled_embeds(walked, mini_pipe):
    t, f = walked
    m = f["magnitude"]
    assert m["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert m["norm"] == pytest.approx(2 * float(t.trace.prompt_embeds.norm()), rel=1e-5)
    plain = mini_pipe(
        prompt_embeds=2 * t.trace.prompt_embeds[None],
        negative_prompt_embeds=t.trace.negative_embeds[None],
        num_inference_steps=25,
        guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(3),
    ).images[0]
    assert pixel_distance(plain, m["scaled_image"]) < 2 / 255  # batched: within rounding
    distance = pixel_distance(plain, t.trace.image)
    assert m["changes"] == ("yes" if distance > tour_stops.CHANGED else "no")
    assert f"{m['distance']:.3f}" in tour_text.reveal("magnitude", m, m["changes"])


def test_word_map_share_is_recomputed_from_the_attention(walked):
    t, f = walked
    w = f["words"]
    heat = t.trace.attention[w["index"]].mean(dim=0).numpy()  # (h, w) over steps
    h2, w2 = heat.shape[0] // 2, heat.shape[1] // 2
    quarters = {
        "top left": heat[:h2, :w2].sum(),
        "top right": heat[:h2, w2:].sum(),
        "bottom left": heat[h2:, :w2].sum(),
        "bottom right": heat[h2:, w2:].sum(),
    }
    assert w["word"] not in tour_stops.FUNCTION_WORDS  # a word that names something
    assert w["quarter"] == max(quarters, key=quarters.get)
    assert w["share"] == pytest.approx(quarters[w["quarter"]] / heat.sum(), rel=1e-5)
    assert f"{w['share']:.0%} of its attention in the {w['quarter']}" in tour_text.sentences(
        "words", w
    )


def test_map_sketch_clip_and_scheduler_figures(walked, mini_pipe):
    t, f = walked
    m = f["map"]
    other = t.trace  # PCA of both runs' latents: the two axes' share of the variance
    assert m["points"] == 2 * (other.num_steps + 1) and m["dims"] == other.latents[0].numel()
    assert 0 < m["explained"] <= 1
    assert f["sketch"]["steps_run"] == int(25 * 0.6) == 15
    c = f["clip"]
    assert c["best_caption"] == c["captions"][int(np.argmax(c["cosines"]))]
    s = f["schedulers"]
    assert s["fastest"] in tour_stops.RACE and len(s["curves"]["ddim"]) == len(s["steps"])
    # one point of the race recomputed with the plain pipeline: DDIM at 4 steps vs 50
    pic = lambda n: mini_pipe(  # noqa: E731
        PROMPT,
        num_inference_steps=n,
        guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(3),
    ).images[0]
    four = tour_stops.RACE_STEPS.index(4)
    assert s["curves"]["ddim"][four] == pytest.approx(pixel_distance(pic(4), pic(50)), abs=1e-6)
    said = tour_text.reveal("schedulers", s, s["fastest"])
    assert said.startswith("**Right:") and "| DDIM |" in said


def test_every_stop_has_words_and_the_predict_stops_ask(walked):
    _, f = walked
    asking = {k for k in tour.STOPS if tour_text.prediction(k, f[k]) is not None}
    assert asking == {"jump", "coarse", "clip", "magnitude", "schedulers"}
    for key in tour.STOPS:
        assert len(tour_text.sentences(key, f[key])) > 40


def test_tab_handlers_walk_every_stop_and_open_it_in_its_tab(mini_pipe):
    import gradio as gr

    from explorer.ui.common import AppContext
    from explorer.ui.layout import build_demo
    from explorer.ui.tabs import tour as tab

    ctx = AppContext(load=lambda: mini_pipe, embedded="mini-shapes")
    build_demo(ctx)  # registers every tab's links
    out = tab.start_tour(ctx, PROMPT, 3)
    assert out["index"] == 0 and "1 / 13" in out["dots"] and out["title"].startswith("### 1.")
    t = out["state"]
    for i in range(1, 13):
        out = tab.move(ctx, 1, t, i - 1)
        assert out["index"] == i and f"{i + 1} / 13" in out["dots"]
        key = tour.STOPS[i]
        ask = tour_text.prediction(key, t.done[key])
        if ask is not None:
            pick = ask.choices[0][1] if ask.choices else 3
            said = tab.reveal_answer(t, i, pick, 3)
            assert said["answer"].startswith("**")
            shown = said["gallery"] if said["gallery"].visible else said["plot"]
            assert shown.visible  # the view comes with the answer, not before it
            assert tab.reveal_answer(t, i, None, None)["answer"].startswith("Pick an answer")
        else:
            assert out["gallery"].visible or out["plot"].visible
        opened = tab.open_in_tab(ctx, t, i)
        stop = tour_text.STOPS[key]
        assert opened["tabs"].selected == stop.tab and opened["target"] == stop.place
        if stop.tab == "generate":
            assert opened["generate.image"] is t.trace.image
        elif f"{stop.tab}.prompt" in opened:
            assert opened[f"{stop.tab}.prompt"] == PROMPT
    assert tab.move(ctx, 1, t, 12)["index"] == 12  # Next on the last stays there
    with pytest.raises(gr.Error, match="Start the tour"):
        tab.move(ctx, 1, None, 0)


def test_tour_start_refuses_a_bad_prompt_with_a_message(mini_pipe):
    from explorer.inputs.errors import VisitorError
    from explorer.ui.common import AppContext
    from explorer.ui.tabs import tour as tab

    ctx = AppContext(load=lambda: mini_pipe, embedded="mini-shapes")
    with pytest.raises(VisitorError):
        tab.start_tour(ctx, "x" * 20_000, 0)
    with pytest.raises(VisitorError):
        tab.start_tour(ctx, PROMPT, -5)
