"""What a visitor is told about a run: notes on its inputs, above its status (validation notes,
words the model does not know, a prompt past what the encoder reads, few steps spaced
"leading"), and the status line itself (`done_text`)."""

from __future__ import annotations

from explorer.engine.models import embedded_name, private_tokenizer
from explorer.engine.schedulers import config_spacing, make_scheduler
from explorer.engine.tokens import token_note
from explorer.engine.tracefile import Trace
from explorer.inputs.controls import RunSettings
from explorer.inputs.words import count, quoted, unknown
from explorer.mini.known import known_words


def prompt_notes(pipe, settings: RunSettings) -> list[str]:
    """What the visitor must be told about a run's prompt: the validation notes (empty prompt,
    characters removed), the words the model does not know and, past what the text encoder
    reads, that the rest is cut."""
    tokenizer = private_tokenizer(pipe)
    n_tokens = len(tokenizer(settings.prompt)["input_ids"])
    cut = token_note(n_tokens, pipe.tokenizer.model_max_length)
    unknown = unknown_note(pipe, tokenizer, settings.prompt)
    few = spacing_note(pipe, settings)
    solver = solver_note(pipe, settings)
    return [*settings.notes, *(n for n in (unknown, cut, few, solver) if n)]


FOURTH_ORDER = ("pndm", "lms")  # multistep solvers of order 4 (PLMS; LMS's default order)
STIFF_GUIDANCE = 3.0  # above this the Mini models' guided ε is too stiff for them


def solver_note(pipe, settings: RunSettings) -> str:
    """Why pndm and lms go wrong on the Mini models at high guidance (measured at guidance 7.5:
    LMS of order 1 or 2 lands where DDIM does, of order 4 far from it; at guidance 3 the orders
    agree: tests/test_spacing.py)."""
    if settings.scheduler not in FOURTH_ORDER or settings.guidance <= STIFF_GUIDANCE:
        return ""
    if embedded_name(pipe) is None:
        return ""
    return (
        f"{settings.scheduler} extrapolates from its last 4 noise predictions (a 4th-order "
        f"multistep solver). At guidance {settings.guidance:g} this small model's guided noise "
        "changes too much from step to step for that, and the run overshoots (a red circle "
        "turns yellow, or dissolves into noise); the same happens in plain diffusers. ddim, "
        "euler, dpmpp_2m or unipc, "
        f"or guidance {STIFF_GUIDANCE:g} or less, stay on track"
    )


FEW_STEPS = 4  # at most this many steps with "leading" spacing gets a note


def spacing_note(pipe, settings: RunSettings) -> str:
    """A note when few steps are spaced "leading" (they then start far from pure noise)."""
    spacing = config_spacing(pipe) if settings.spacing == "model" else settings.spacing
    if spacing != "leading" or settings.steps > FEW_STEPS:
        return ""
    first = make_scheduler(pipe, settings.scheduler, spacing)
    first.set_timesteps(settings.steps)
    t = int(first.timesteps[0])
    picture = float(first.alphas_cumprod[t]) ** 0.5 * 100  # sqrt(ᾱ_t): the share of x_0 in x_t
    return (
        f"with “leading” spacing {count(settings.steps)} start{'s' if settings.steps == 1 else ''} "
        f"at t = {t}, not 999: the model reads the random start as a latent that is still "
        f"{picture:.0f}% picture, so what it removes is not the noise and the result stays "
        "noisy; choose timestep spacing “trailing” to start from pure noise at t = 999"
    )


def unknown_note(pipe, tokenizer, prompt: str) -> str:
    """'this model does not know "astronaut" and "horse" ...', or "" when it knows every word."""
    words = unknown(tokenizer, prompt)
    if not words:
        return ""
    name = embedded_name(pipe)
    groups = known_words(name) if name else {}
    knows = "; ".join(f"{g} such as {', '.join(w[:4])}" for g, w in groups.items())
    note = (
        f"{name or 'this model'} does not know {quoted(words)}: "
        + ("it is" if len(words) == 1 else "each is")
        + " read as one `<|unk|>` token, which carries no meaning"
    )
    if knows:
        note += f". It knows {knows} (all of them: “What this model knows”, above the tabs)"
    return note


def notes_markdown(notes: list[str]) -> str:
    """Notes as warning lines to put above a status text."""
    return "".join(f"⚠ {n}  \n" for n in notes)


def done_text(trace: Trace, waited: float | None = None) -> str:
    """The status line of a finished (or stopped) run: plain text, as API callers get it.
    `waited`: seconds from the click to the last view (what the visitor waited), beside the
    model's own time."""
    s = trace.settings
    ran = (
        f"stopped after {s['steps_run']} of {count(s['steps'])}"
        if s["cancelled"]
        else count(s["steps"])
    )
    model = sum(trace.seconds)
    took = f"{model:.2f} s"
    if waited is not None:
        took = f"{waited:.2f} s (the model's steps {took})"
    return f"Done: {ran} in {took} · seed {s['seed']} · {s['scheduler_class']}"
