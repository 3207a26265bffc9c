"""The tour's words: each stop's title, its one to three sentences (this run's figures, from
`explorer.studies.tour`), its predict-then-reveal question and where its full view lives.

A stop with a prediction keeps the figures that give the answer away for its reveal.
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.inputs.words import count
from explorer.studies import tour_stops as tour

SCHEDULER_NAMES = {"ddim": "DDIM", "euler": "Euler", "dpmpp_2m": "DPM-Solver++ (2M)"}


@dataclass(frozen=True)
class Stop:
    """One stop: its question, and the tab (sub-tab, view) where the full view is."""

    title: str
    tab: str  # the top-level tab id
    place: str  # a sub-tab id or a Generate view's elem_id ("" for none)
    where: str  # the link's words: "the Generate tab's step views"


STOPS: dict[str, Stop] = {
    "tensors": Stop("What are these “tensors”?", "generate", "view-tensors", "Generate: tensors"),
    "jump": Stop("Why can't it jump straight to the final image?", "generate", "view-steps",
                 "Generate: every step"),
    "noise": Stop("How is the predicted noise used?", "generate", "view-scheduler",
                  "Generate: the scheduler's step"),
    "coarse": Stop("Coarse to fine", "generate", "view-charts", "Generate: charts"),
    "guidance": Stop("How does the text steer it?", "generate", "view-guidance",
                     "Generate: guidance"),
    "latent": Stop("What is the latent space?", "generate", "view-latent", "Generate: latent"),
    "clip": Stop("How does CLIP match text and images?", "clip", "clip-image-text",
                 "CLIP: image × text"),
    "magnitude": Stop("Same direction, different magnitude?", "experiments", "exp-magnitude",
                      "Experiments: magnitude"),
    "norms": Stop("Are the vectors normalized?", "generate", "view-tokens", "Generate: tokens"),
    "sketch": Stop("From a sketch to an image", "sketch", "", "Sketch"),
    "schedulers": Stop("“It's like solving a differential equation”", "experiments",
                       "exp-schedulers", "Experiments: schedulers"),
    "map": Stop("Picture a space of thousands of dimensions", "experiments", "exp-map",
                "Experiments: map"),
    "words": Stop("Where does each word act?", "attention", "", "Attention"),
}  # fmt: skip


def _signed(b: float) -> str:
    return f"+ {b:.3f}" if b >= 0 else f"− {-b:.3f}"


def _tensors(f: dict) -> str:
    return (
        f"This run's latent x_t is {f['C']} × {f['h']} × {f['w']} = "
        f"{f['latent_numbers']:,} numbers: {f['C']} channels of a {f['h']}×{f['w']} grid, "
        f"for a {f['width']}×{f['height']} picture of {f['pixel_numbers']:,} numbers. "
        f"The prompt became {f['tokens']} vectors of {f['width_D']} numbers each. "
        + (
            f"With guidance on, the UNet sees a batch of {f['batch']} at each of the "
            f"{f['steps']} steps: the empty prompt and yours."
            if f["batch"] == 2
            else f"Guidance is off: the UNet sees a batch of 1 at each of {f['steps']} steps."
        )
    )


def _jump(f: dict) -> str:
    return (
        f"At step 1 of {f['steps']} the predicted image x0 points only "
        f"{f['cosine_first']:.2f} (cosine) in the direction of the final latent: a blurry "
        "average of every picture this noise could become. One step alone ends "
        f"{f['one_step_distance']:.2f} (RMS, pixels 0–1) from the {f['steps']}-step picture."
    )


def _noise(f: dict) -> str:
    verb = "removes" if f["b"] < 0 else "adds"
    return (
        f"At step {f['step']} of {f['steps']} (t = {f['t']:.0f}, ᾱ = {f['alpha_bar']:.3f}) "
        f"the scheduler computes x_(t−1) = {f['a']:.3f}·x_t {_signed(f['b'])}·ε: it scales the "
        f"latent by {f['a']:.3f} and {verb} {abs(f['b']):.3f} of the predicted noise."
    )


def _coarse(f: dict) -> str:
    return (
        f"At step {f['step']} of {f['steps']}, ᾱ = {f['alpha_bar']:.3f}: "
        f"{f['noise_share']:.0%} of x_t's power is still noise. The chart shows, for four "
        "bands of spatial frequency, how much of the final x0 is already in place."
    )


def _guidance(f: dict) -> str:
    if not f["guided"]:
        return (
            f"Guidance is {f['guidance']:g} (1 or less), so the UNet ran once per step, "
            "with the prompt only: nothing to take apart. Run the tour with guidance above 1."
        )
    return (
        f"At step {f['step']} the UNet ran twice: without the prompt "
        f"(|ε_u| = {f['uncond_norm']:.1f}) and with it. Their difference, the prompt's push, "
        f"is only {f['push_share']:.1%} as long (|ε_c − ε_u| = {f['push_norm']:.2f}); "
        f"guidance multiplies it by {f['guidance']:g} before adding it to ε_u."
    )


def _latent(f: dict) -> str:
    return (
        f"The VAE squeezes the {f['width']}×{f['height']}×3 picture into {f['channels']} "
        f"channels of a {f['h']}×{f['w']} grid: {f['ratio']:g}× fewer numbers. The final "
        f"latent's values run from {f['lowest']:.2f} to {f['highest']:.2f}; the decoder "
        "turns them back into pixels."
    )


def _clip(f: dict) -> str:
    if "missing" in f:
        return "This model ships no CLIP with a vision tower: " + f["missing"]
    return (
        "CLIP turns the picture into one vector and each caption into another, and scores "
        f"each pair by the cosine of their angle; it scores {len(f['captions'])} captions "
        "against this run's picture."
    )


def _magnitude(f: dict) -> str:
    return (
        f"Multiply the prompt's embedding by {f['factor']:g}: every vector keeps its "
        f"direction (cosine {f['cosine']:.3f} to the original) while the whole embedding's "
        f"length goes from {f['norm_before']:.1f} to {f['norm']:.1f}."
    )


def _norms(f: dict) -> str:
    return (
        "The UNet gets the text encoder's vectors as they are: the start token's is "
        f"{f['start_norm']:.1f} long and the prompt's {count(f['words'], 'word')} average "
        f"{f['word_norm']:.1f}; none is 1. Only CLIP's similarity score normalises, and "
        "only its one pooled vector per text."
    )


def _sketch(f: dict) -> str:
    return (
        "A rough sketch (this run's picture squeezed to 8×8 blocks of colour) went back in "
        f"with strength {f['strength']:g}: the model started {f['strength']:.0%} of the way "
        f"up the noise schedule, ran {f['steps_run']} of {f['steps']} steps and drew over the "
        f"sketch, ending {f['from_sketch']:.2f} (RMS) from it."
    )


def _schedulers(f: dict) -> str:
    names = ", ".join(SCHEDULER_NAMES.get(n, n) for n in f["curves"])
    return (
        f"Three ODE solvers ({names}) start from the same noise, each at "
        f"{', '.join(str(n) for n in f['steps'])} steps, and are measured against their own "
        f"{f['reference_steps']}-step picture (RMS, pixels 0–1)."
    )


def _map(f: dict) -> str:
    return (
        f"Each step's latent is one point in {f['dims']:,} dimensions. PCA flattens this "
        f"run's path and a second seed's ({f['points']} points) onto the two directions that "
        f"keep the most spread: {f['explained']:.0%} of it. The two runs start "
        f"{f['start_distance']:.1f} apart and end {f['end_distance']:.1f} apart."
    )


def _words(f: dict) -> str:
    if f["word"] is None:
        return "The prompt has no words of its own to map."
    return (
        f"Cross-attention, averaged over all steps: the word “{f['word']}” puts "
        f"{f['share']:.0%} of its attention in the {f['quarter']} quarter of the picture, "
        f"where an even spread would put {f['even']:.0%}."
    )


SENTENCES = {  # stop -> (its figures -> its words)
    "tensors": _tensors,
    "jump": _jump,
    "noise": _noise,
    "coarse": _coarse,
    "guidance": _guidance,
    "latent": _latent,
    "clip": _clip,
    "magnitude": _magnitude,
    "norms": _norms,
    "sketch": _sketch,
    "schedulers": _schedulers,
    "map": _map,
    "words": _words,
}


def sentences(key: str, f: dict) -> str:
    """The stop's sentences, quoting this run's figures `f` (`tour.Tour.facts(key)`)."""
    if key not in SENTENCES:
        raise ValueError(f"unknown stop {key!r}")
    return SENTENCES[key](f)


@dataclass(frozen=True)
class Predict:
    """A question asked before the answer is shown: (label, value) choices, or a step slider
    when None."""

    question: str
    choices: list[tuple[str, str]] | None


def prediction(key: str, f: dict) -> Predict | None:
    """The stop's predict-then-reveal question, or None."""
    if key == "jump":
        return Predict(
            "At which step will the predicted image x0 first show the thing's outline "
            f"(point within cosine {tour.OUTLINE_COSINE} of the final latent)? Pick a step, "
            "then reveal.",
            None,
        )
    if key == "coarse":
        return Predict(
            "Which settles first in the predicted image: the coarse layout and colour, or the "
            "fine edges?",
            [
                ("the coarse layout and colour", "coarse"),
                ("the fine edges", "fine"),
                ("both at once", "both at once"),
            ],
        )
    if key == "clip" and "missing" not in f:
        captions = [(c, c) for c in f["captions"]]
        return Predict("Which caption will CLIP score highest for this picture?", captions)
    if key == "magnitude":
        yes_no = [("yes", "yes"), ("no", "no")]
        return Predict("Will doubling the embedding's length change the picture?", yes_no)
    if key == "schedulers":
        return Predict(
            f"Which scheduler reaches its {f['reference_steps']}-step picture in fewest steps?",
            [(SCHEDULER_NAMES.get(n, n), n) for n in f["curves"]],
        )
    return None


def reveal(key: str, f: dict, pick: str | int | None) -> str:
    """The answer, computed from the run, beside what the visitor picked."""
    if pick is None or pick == "":
        return "Pick an answer first, then reveal."
    if key == "jump":
        off = abs(int(pick) - f["outline_step"])
        verdict = "exactly right" if off == 0 else f"off by {count(off)}"
        return (
            f"**Step {f['outline_step']}**: x0's cosine to the final latent first reaches "
            f"{f['outline_cosine']:.2f} there. You picked step {int(pick)}: {verdict}."
        )
    right = "Right" if str(pick) == str(_answer(key, f)) else "Not this time"
    if key == "coarse":
        lesson = {
            "coarse": "low frequencies settle first",
            "fine": "here the fine detail settled first",
            "both at once": "both settled at the same step",
        }[f["settles_first"]]
        return (
            f"**{right}.** The coarse band is {tour.SETTLED:.0%} in place by step "
            f"{f['coarse_step']}, the finest by step {f['fine_step']}: {lesson}."
        )
    if key == "clip":
        scores = " · ".join(f"“{c}” {s:.3f}" for c, s in zip(f["captions"], f["cosines"]))
        return f"**{right}.** “{f['best_caption']}” scores highest. Cosines: {scores}."
    if key == "magnitude":
        return (
            f"**{right}: {f['changes']}.** The picture made with the doubled embedding is "
            f"{f['distance']:.3f} (RMS, pixels 0–1) from this run's: same direction, and yet the "
            "length alone changes what the UNet draws."
        )
    if key == "schedulers":
        rows = ["| scheduler | " + " | ".join(count(n) for n in f["steps"]) + " |"]
        rows.append("|---" * (len(f["steps"]) + 1) + "|")
        for name, ds in f["curves"].items():
            rows.append(
                f"| {SCHEDULER_NAMES.get(name, name)} | "
                + " | ".join(f"{d:.3f}" for d in ds)
                + " |"
            )
        n = f["reached"][f["fastest"]]
        how = (
            f"within {tour.REACHED} of its {f['reference_steps']}-step picture at {count(n)}"
            if n is not None
            else f"none got within {tour.REACHED}; it came closest at {count(f['steps'][-1])}"
        )
        return (
            f"**{right}: {SCHEDULER_NAMES.get(f['fastest'], f['fastest'])}**, {how}.\n\n"
            + "\n".join(rows)
        )
    raise ValueError(f"stop {key!r} asks nothing")


def _answer(key: str, f: dict) -> str:
    return {
        "coarse": f.get("settles_first"),
        "clip": f.get("best_caption"),
        "magnitude": f.get("changes"),
        "schedulers": f.get("fastest"),
    }[key]
