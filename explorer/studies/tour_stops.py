"""The figures of each stop of the guided tour (`explorer.studies.tour`): one function a stop,
(tour, pipe) -> a dict of plain numbers (and the pictures its view shows), computed from the
tour's run and the extra runs the stop makes on `pipe`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from explorer.engine.capture import trace
from explorer.engine.tracefile import Trace
from explorer.studies import anatomy, clip_scores, img2img, sweeps, trajectories, word_maps
from explorer.studies.distances import pixel_distance

OUTLINE_COSINE = 0.9  # x0 "shows the outline" once it points this close to the final x0
SETTLED = 0.9  # a frequency band is settled once this share of it is in place
CHANGED = 0.01  # RMS pixel difference (0..1) above which a picture "changed"
REACHED = 0.05  # RMS pixel distance (0..1) to the 50-step picture that counts as reaching it
RACE = ("ddim", "euler", "dpmpp_2m")  # the schedulers of the race, deterministic ODE solvers
RACE_STEPS = (1, 2, 4, 8, 16, 32)
REFERENCE_STEPS = 50
FUNCTION_WORDS = {"a", "an", "the", "on", "in", "of", "at", "and", "with", "to", ""}  # not mapped
MAGNITUDE = 2.0  # the embedding's length is multiplied by this


@dataclass
class Tour:
    """One tour: the main run (with attention maps) and each visited stop's figures."""

    trace: Trace
    captions: list[str]  # captions the CLIP stop scores the picture against (the prompt first)
    # (T, C, h, w) x0 -> (T, bands) share of each spatial-frequency band in place, coarse first:
    # the charts' own measure (`explorer.charts.metrics.band_settling`), handed in by the caller
    settling: Callable[[np.ndarray], np.ndarray]
    done: dict[str, dict] = field(default_factory=dict)

    @property
    def run(self) -> dict[str, Any]:
        """The settings every extra run copies from the main one."""
        s = self.trace.settings
        return dict(
            negative_prompt=s["negative_prompt"],
            steps=self.trace.num_steps,
            guidance=s["guidance"],
            seed=s["seed"],
            scheduler=s["scheduler"],
        )

    def facts(self, key: str, pipe: Any) -> dict:
        """The figures of stop `key`, computed on first visit (extra runs on `pipe`)."""
        if key not in FACTS:
            raise ValueError(f"unknown stop {key!r}; the stops are {', '.join(FACTS)}")
        if key not in self.done:
            self.done[key] = FACTS[key](self, pipe)
        return self.done[key]


def tensors(tour: Tour, pipe: Any) -> dict:
    tr = tour.trace
    C, h, w = tr.latents.shape[1:]
    sizes = anatomy.compression(tr)
    L, D = tr.prompt_embeds.shape
    return dict(
        C=C,
        h=h,
        w=w,
        latent_numbers=C * h * w,
        height=sizes["height"],
        width=sizes["width"],
        pixel_numbers=sizes["height"] * sizes["width"] * 3,
        tokens=L,
        width_D=D,
        batch=2 if tr.guided else 1,
        steps=tr.num_steps,
    )


def x0_cosines(tr: Trace) -> np.ndarray:
    """Cosine of each step's predicted x0 with the final one: (T,)."""
    x = tr.x0_pred.flatten(1).double()  # (T, n)
    final = tr.latents[-1].flatten().double()  # (n,)
    return (x @ final / (x.norm(dim=1) * final.norm()).clamp_min(1e-12)).numpy()


def jump(tour: Tour, pipe: Any) -> dict:
    tr = tour.trace
    cos = x0_cosines(tr)
    first = next((i + 1 for i, c in enumerate(cos) if c >= OUTLINE_COSINE), tr.num_steps)
    one = trace(pipe, tr.settings["prompt"], **{**tour.run, "steps": 1}, spacing="trailing")
    return dict(
        steps=tr.num_steps,
        cosine_first=float(cos[0]),
        outline_step=first,
        outline_cosine=float(cos[first - 1]),
        one_step_image=one.image,
        one_step_distance=pixel_distance(one.image, tr.image),
        cosines=cos.tolist(),
    )


def noise(tour: Tour, pipe: Any) -> dict:
    tr = tour.trace
    parts = anatomy.step_parts(tr, tr.num_steps // 2)
    return dict(
        step=parts.step + 1,
        steps=tr.num_steps,
        t=parts.timestep,
        alpha_bar=parts.alpha_bar,
        a=parts.a,
        b=parts.b,
        residual=parts.residual,
    )


def coarse(tour: Tour, pipe: Any) -> dict:
    tr = tour.trace
    settled = tour.settling(tr.x0_pred.numpy())  # (T, bands), band 0 coarsest

    def first(k: int) -> int:
        return next((i + 1 for i, v in enumerate(settled[:, k]) if v >= SETTLED), tr.num_steps)

    coarse_at, fine_at = first(0), first(settled.shape[1] - 1)
    i = min(2, tr.num_steps - 1)  # step 3 (or the last)
    alpha = float(tr.alphas_cumprod[i])
    if coarse_at == fine_at:
        answer = "both at once"
    else:
        answer = "coarse" if coarse_at < fine_at else "fine"
    return dict(
        step=i + 1,
        steps=tr.num_steps,
        alpha_bar=alpha,
        noise_share=1 - alpha,
        coarse_step=coarse_at,
        fine_step=fine_at,
        settles_first=answer,
    )


def guidance(tour: Tour, pipe: Any) -> dict:
    tr = tour.trace
    i = tr.num_steps // 2
    parts = anatomy.guidance_parts(tr, i)
    if parts is None:
        return dict(guided=False, guidance=float(tr.settings["guidance"]), step=i + 1)
    u, d = parts.norms["unconditional ε_u"], parts.norms["difference ε_c − ε_u"]
    return dict(
        guided=True,
        guidance=float(tr.settings["guidance"]),
        step=i + 1,
        steps=tr.num_steps,
        uncond_norm=u,
        push_norm=d,
        push_share=d / max(u, 1e-12),
    )


def latent(tour: Tour, pipe: Any) -> dict:
    tr = tour.trace
    final = tr.latents[-1]  # (C, h, w)
    sizes = anatomy.compression(tr)
    return dict(
        ratio=float(sizes["ratio"]),
        height=sizes["height"],
        width=sizes["width"],
        h=int(final.shape[1]),
        w=int(final.shape[2]),
        channels=int(final.shape[0]),
        lowest=float(final.min()),
        highest=float(final.max()),
    )


def clip(tour: Tour, pipe: Any) -> dict:
    try:
        model = clip_scores.find_clip(pipe)
    except clip_scores.ClipMissing as e:
        return dict(missing=str(e), captions=list(tour.captions))
    scores = clip_scores.image_text(model, [tour.trace.image], tour.captions)
    cos = scores.similarity[0]  # (M,)
    return dict(
        captions=list(tour.captions),
        cosines=[float(c) for c in cos],
        best_caption=tour.captions[int(np.argmax(cos))],
        prompt_cosine=float(cos[0]),
    )


def magnitude(tour: Tour, pipe: Any) -> dict:
    tr = tour.trace
    r = sweeps.scale_embedding(pipe, tr.settings["prompt"], [MAGNITUDE], **tour.run)
    distance = r.distance[0]
    return dict(
        factor=MAGNITUDE,
        norm=r.norms[0],
        norm_before=float(tr.prompt_embeds.norm()),  # the whole (L, D) embedding, as `norm`
        cosine=r.cosines[0],
        distance=distance,
        changes="yes" if distance > CHANGED else "no",
        scaled_image=r.runs[0].image,
    )


def norms(tour: Tour, pipe: Any) -> dict:
    tr = tour.trace
    kinds = word_maps.token_kinds(tr.prompt_tokens)
    lengths = tr.prompt_embeds.double().norm(dim=1).numpy()  # (L,)
    own = [float(lengths[i]) for i, k in enumerate(kinds) if k == "word"]
    return dict(
        start_norm=float(lengths[0]),
        word_norm=float(np.mean(own)) if own else float("nan"),
        words=len(own),
        lowest=float(lengths.min()),
        highest=float(lengths.max()),
        lengths=lengths.tolist(),
    )


def rough_sketch(image: Image.Image, cells: int = 8) -> Image.Image:
    """The picture as a rough sketch: `cells`×`cells` blocks of colour, at the picture's size."""
    return image.convert("RGB").resize((cells, cells), Image.BOX).resize(image.size, Image.NEAREST)


def sketch(tour: Tour, pipe: Any, strength: float = 0.6) -> dict:
    tr = tour.trace
    drawn = rough_sketch(tr.image)
    out = img2img.sketch_to_image(pipe, drawn, tr.settings["prompt"], strength=strength, **tour.run)
    return dict(
        strength=strength,
        steps_run=out.num_steps,
        steps=tr.num_steps,
        sketch=drawn,
        image=out.image,
        from_sketch=pixel_distance(out.image, drawn),
    )


def schedulers(tour: Tour, pipe: Any, race: Sequence[str] = RACE) -> dict:
    """Each scheduler at `RACE_STEPS`, measured against its own 50-step picture (same noise)."""
    prompt = tour.trace.settings["prompt"]
    common = {k: v for k, v in tour.run.items() if k not in ("steps", "scheduler")}
    curves, references = {}, {}
    for name in race:
        ref = trace(pipe, prompt, steps=REFERENCE_STEPS, scheduler=name, **common).image
        references[name] = ref
        curves[name] = [
            pixel_distance(trace(pipe, prompt, steps=n, scheduler=name, **common).image, ref)
            for n in RACE_STEPS
        ]
    reached = {
        name: next((n for n, d in zip(RACE_STEPS, ds) if d <= REACHED), None)
        for name, ds in curves.items()
    }

    def rank(name: str) -> tuple:  # fewest steps to reach; else the closest at the most steps
        n = reached[name]
        return (n if n is not None else 10**6, curves[name][-1])

    return dict(
        steps=list(RACE_STEPS),
        reference_steps=REFERENCE_STEPS,
        curves=curves,
        reached=reached,
        fastest=min(race, key=rank),
        references=references,
    )


def map_(tour: Tour, pipe: Any) -> dict:
    tr = tour.trace
    other = trace(pipe, tr.settings["prompt"], **{**tour.run, "seed": tr.settings["seed"] + 1})
    runs = [tr.latents.numpy(), other.latents.numpy()]  # (T+1, C, h, w) each
    labels = [f"seed {tr.settings['seed']}", f"seed {tr.settings['seed'] + 1}"]
    m = trajectories.trajectory_map(runs, labels, method="pca")
    C, h, w = tr.latents.shape[1:]
    return dict(
        dims=C * h * w,
        points=sum(len(p) for p in m.paths),
        explained=float(sum(m.projection.explained or (0.0, 0.0))),
        map=m,
        start_distance=float((tr.latents[0] - other.latents[0]).norm()),
        end_distance=float((tr.latents[-1] - other.latents[-1]).norm()),
    )


def words(tour: Tour, pipe: Any) -> dict:
    wm = word_maps.WordMaps.of(tour.trace)
    if not wm.words:
        return dict(word=None)
    mean = wm.maps.mean(axis=1)  # (L, h, w) over steps
    best, where, share = None, "", 0.0
    content = [i for i in wm.words if wm.tokens[i].strip(",.").lower() not in FUNCTION_WORDS]
    for i in content or wm.words:
        quarters = word_maps.quadrant_shares(mean[i])
        name = max(quarters, key=quarters.get)
        if quarters[name] > share:
            best, where, share = i, name, quarters[name]
    return dict(word=wm.tokens[best], index=best, quarter=where, share=share, even=0.25)


FACTS: dict[str, Callable[[Tour, Any], dict]] = {
    "tensors": tensors,
    "jump": jump,
    "noise": noise,
    "coarse": coarse,
    "guidance": guidance,
    "latent": latent,
    "clip": clip,
    "magnitude": magnitude,
    "norms": norms,
    "sketch": sketch,
    "schedulers": schedulers,
    "map": map_,
    "words": words,
}
