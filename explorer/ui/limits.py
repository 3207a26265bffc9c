"""What the app accepts: its limits, declared once; its answer to bad input is `bad_inputs`.

docs/limits.md holds exactly what `markdown_limits()` and `markdown_bad_inputs()` print
(`python -m explorer.ui.limits`; a test checks it); the page states `markdown_limits` for the
model it serves. `BAD_INPUTS`, `Case` and `markdown_bad_inputs` are `explorer.ui.bad_inputs`'s,
importable from here too.
"""

from __future__ import annotations

from explorer.inputs.controls import CONTROLS, MAX_PROMPT_CHARS, SEED_MAX
from explorer.inputs.lists import MAX_TEXT
from explorer.inputs.uploads import MAX_UPLOAD_BYTES
from explorer.ui.bad_inputs import BAD_INPUTS, Case, markdown_bad_inputs  # noqa: F401 - re-exported

MINI_SIZE = 64  # the Mini model's pictures (64 × 64), named as the example in the limits


def run_memory_bytes(
    steps: int, channels: int = 4, h: int = 16, w: int = 16, scale: int = 4, guided: bool = True
) -> int:
    """An upper estimate of what one run keeps in memory besides the model (bytes); the defaults
    are the Mini model's latent (4 × 16 × 16, VAE factor 4).

    Per step the trace keeps float32 (C, h, w) tensors: x_t, model input, ε, x_0, and with
    guidance ε_uncond and ε_text (6·C·h·w·4 bytes), plus three (h·scale, w·scale) RGB pictures
    (the live x_0 preview and the decoded x_0 and x_t of the step views, 3·3·H·W bytes).
    """
    tensors = (6 if guided else 4) * channels * h * w * 4
    pictures = 3 * 3 * (h * scale) * (w * scale)
    return steps * (tensors + pictures)


def largest_image(fixed_size: int | None = None, model: str | None = None) -> str:
    """The largest picture a run makes: in general (docs/limits.md), or for the model served."""
    most = int(CONTROLS["size"].maximum)
    if fixed_size:
        return f"{model or 'this model'}: {fixed_size} × {fixed_size} pixels, its own size only"
    if model:
        return f"{model}: {most} × {most} pixels (the `size` control; 0 is the model's own size)"
    return (
        f"the model's own sample size (the Mini model makes {MINI_SIZE} × {MINI_SIZE} only); "
        f"a model that takes other sizes: up to {most} × {most} (the `size` control)"
    )


def limits(fixed_size: int | None = None, model: str | None = None) -> list[tuple[str, str, str]]:
    """(limit, value, where it is enforced) for docs/limits.md (in general) and the UI (for the
    model being served: `fixed_size` the one size it makes, None when it takes any)."""
    from explorer.engine.runzip import MAX_UNPACKED_BYTES, MAX_ZIP_BYTES
    from explorer.engine.tracefile import MAX_FILE_SIZES, MAX_FILE_STEPS, MAX_IMAGE_PIXELS
    from explorer.inputs.uploads import MAX_PIXELS
    from explorer.ui.common import MAX_FILE_SIZE, QUEUE_SIZE, RUN_CONCURRENCY
    from explorer.ui.tabs.experiments import EXPERIMENT_CONCURRENCY, GRID_MAX, LISTS

    steps = int(CONTROLS["steps"].maximum)
    mb = lambda n: f"{n / 2**20:.1f} MB"  # noqa: E731
    lists = ", ".join(f"{k} {v['max_count']}" for k, v in LISTS.items())
    return [
        ("most steps per run", f"{steps}", "`validate_run` (every endpoint)"),
        (
            "prompt length",
            f"{MAX_PROMPT_CHARS} characters; the encoder reads 77 tokens",
            "`validate_run`; longer prompts are cut by the tokenizer, and the visitor is told",
        ),
        ("seed", "0 to 2^64 − 1" if SEED_MAX == 2**64 - 1 else str(SEED_MAX), "`validate_run`"),
        (
            "most sweep cells",
            f"lists: {lists}, schedulers 8; grid {GRID_MAX} × {GRID_MAX} = {GRID_MAX**2} runs",
            "`explorer.inputs.lists` (stated beside each list)",
        ),
        ("list text", f"{MAX_TEXT} characters", "`explorer.inputs.lists`"),
        (
            "largest image",
            f"{largest_image(fixed_size, model)}; an uploaded picture "
            f"{MAX_PIXELS / 1e6:.1f} megapixels (fitted to the model's size); in a saved run "
            f"{int(MAX_IMAGE_PIXELS**0.5)} × {int(MAX_IMAGE_PIXELS**0.5)} pixels",
            "`controls.validate_size`, `images`, `tracefile`",
        ),
        (
            "largest upload",
            f"{MAX_FILE_SIZE.upper()} (gradio `max_file_size`); a saved run "
            f"{MAX_ZIP_BYTES // 2**20} MB zipped, {MAX_UNPACKED_BYTES // 2**20} MB unpacked, "
            f"{MAX_FILE_STEPS} steps, latents up to {MAX_FILE_SIZES['h']} × {MAX_FILE_SIZES['w']}; "
            f"a picture {MAX_UPLOAD_BYTES // 2**20} MB",
            "gradio, `runzip`, `tracefile`, `images`",
        ),
        (
            "per-run memory",
            f"Mini, {steps} steps: at most {mb(run_memory_bytes(steps))}; "
            f"SD 1.5 at 512 × 512: {mb(run_memory_bytes(steps, 4, 64, 64, 8))} (besides the model)",
            "bounded by the step limit (`limits.run_memory_bytes`)",
        ),
        (
            "runs at once",
            f"{RUN_CONCURRENCY} single runs, {EXPERIMENT_CONCURRENCY} experiment, "
            f"{QUEUE_SIZE} waiting",
            "gradio queue, per event (`layout.build_demo`)",
        ),
        ("files served", "only what a handler returns", "no `allowed_paths`"),
        (
            "model",
            "chosen by the operator only (`--model` / `$EXPLORER_MODEL`), safetensors only",
            "`app.py`, `models.check_safetensors`",
        ),
    ]


def markdown_limits(fixed_size: int | None = None, model: str | None = None) -> str:
    """The limits as Markdown: in general (docs/limits.md holds exactly this), or for one model."""
    rows = ["| limit | value | where |", "| --- | --- | --- |"]
    rows += [f"| {a} | {b} | {c} |" for a, b, c in limits(fixed_size, model)]
    return "\n".join(rows)


VISITOR_SKIP = ("files served",)  # rows that only concern whoever runs the server
VISITOR_WORDS = {  # developer words in the limits' values, as a visitor reads them
    " (gradio `max_file_size`)": "",
    "chosen by the operator only (`--model` / `$EXPLORER_MODEL`)": "chosen by whoever runs the app",
}


def visitor_limits(fixed_size: int | None = None, model: str | None = None) -> str:
    """The limits as the page states them to a visitor: what and how much, one line each (where
    each is enforced is for developers: docs/limits.md)."""
    rows = [(a, b) for a, b, _ in limits(fixed_size, model) if a not in VISITOR_SKIP]
    for code, plain in VISITOR_WORDS.items():
        rows = [(a, b.replace(code, plain)) for a, b in rows]
    lines = [f"- **{a[0].upper() + a[1:]}**: {b}" for a, b in rows]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m explorer.ui.limits: the two tables of docs/limits.md
    print(markdown_limits() + "\n\n" + markdown_bad_inputs())
