"""What the app answers to every kind of bad input, declared once: `BAD_INPUTS`.

docs/limits.md holds exactly what `markdown_bad_inputs()` prints (after the limits, in
`python -m explorer.ui.limits`; a test checks it); tests/test_hardening.py sends every row and
checks the answer. A new endpoint adds its rows here: `endpoint` is its api name, `inputs` the
arguments that differ from the test's defaults, `upload` the name of a bad-file maker in
tests/bad_files.py (`bad_file` for /open_run, `bad_picture` for the picture inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from explorer.inputs.controls import MAX_PROMPT_CHARS
from explorer.inputs.lists import MAX_TEXT
from explorer.inputs.uploads import MAX_UPLOAD_BYTES


@dataclass(frozen=True)
class Case:
    """One bad (or odd) input and what the visitor gets for it."""

    endpoint: str  # api name, e.g. "/generate"
    sent: str  # what is sent, in words (the table's second column)
    answer: str  # regex: the error message, or for `runs=True` the status text
    inputs: dict[str, Any] = field(default_factory=dict)  # overrides of the test's defaults
    runs: bool = False  # True: the run happens (with a note); False: refused with a message
    upload: str | None = None  # a bad file, by the name of its maker (tests/bad_files.py)


def ones(n: int) -> str:
    """A list of n entries: '1, 1, 1'."""
    return ", ".join(["1"] * n)


def circles(n: int) -> str:
    """n prompts, one a line."""
    return "\n".join(["a red circle"] * n)


LONG_PROMPT = "red " * 100  # 100 words: past the encoder's 77 tokens
MANY = ones(3000)  # thousands of entries
CONTROL = "a red\x00\x07 circle\x1b[31m"  # control characters (and an escape sequence)
NUL = "a red\x00 circle"
TOO_LONG = "a" * (MAX_PROMPT_CHARS + 1)
OVER = f"prompt over {MAX_PROMPT_CHARS} characters"
FAST = "unknown scheduler 'fast'"  # what is sent, and how its answer starts
MB = MAX_UPLOAD_BYTES // 2**20  # the largest picture upload, in MB
SOURCE_GENERATE, SOURCE_UPLOAD = "generate from the captions", "upload"  # /image_text sources
UPLOAD_INPUTS = {"/image_text": dict(source=SOURCE_UPLOAD, captions_text="a red circle")}
# answers that many rows share
REMOVED = "control or invalid characters removed"
SHORTEN = "shorten it to at most"
STEPS_RANGE = "steps must be between 1 and 100"
SEED_RANGE = "seed must be between 0 and"
NOT_FINITE = "guidance must be a finite number"
NOT_READ = "not a picture this app can read"

# Bad values, by endpoint: (sent, answer, inputs, runs) as in `Case`.
VALUE_ROWS: dict[str, list[tuple]] = {
    "/generate": [
        ("empty prompt", "unconditionally", dict(prompt=""), True),
        ("whitespace-only prompt", "unconditionally", dict(prompt=" \n\t  "), True),
        ("prompt past 77 tokens", "reads the first 77", dict(prompt=LONG_PROMPT), True),
        ("control characters in the prompt", REMOVED, dict(prompt=CONTROL), True),
        ("a lone surrogate in the prompt", REMOVED, dict(prompt="a red \ud800 circle"), True),
        ("emoji in the prompt", "Done: 2 steps", dict(prompt="a red circle 🔴🟦✨"), True),
        ("steps = 1, the fewest", "Done: 1 step in", dict(steps=1), True),
        (OVER, SHORTEN, dict(prompt=TOO_LONG)),
        ("steps = 0", STEPS_RANGE, dict(steps=0)),
        ("steps = -5", STEPS_RANGE, dict(steps=-5)),
        ("steps = 10^9", STEPS_RANGE, dict(steps=10**9)),
        ("steps = 2.5", "steps must be a whole number", dict(steps=2.5)),
        ("steps = 'abc'", "steps must be a whole number", dict(steps="abc")),
        ("guidance = -1", "guidance must be between 0 and 30", dict(guidance=-1)),
        ("guidance = NaN", NOT_FINITE, dict(guidance="nan")),
        ("guidance = inf", NOT_FINITE, dict(guidance="inf")),
        ("guidance = 1e400", NOT_FINITE, dict(guidance="1e400")),
        ("seed = -1", SEED_RANGE, dict(seed=-1)),
        ("seed = 2^64", SEED_RANGE, dict(seed=2**64)),
        ("seed = 2^80", SEED_RANGE, dict(seed=2**80)),
        ("seed = 1.5", "seed must be a whole number", dict(seed=1.5)),
        (FAST, f"{FAST}; choose one of", dict(scheduler="fast")),
    ],
    "/compare_steps": [
        ("step counts '1,,2'", "entry 2 is empty", dict(steps_list="1,,2")),
        ("step counts 'abc'", "'abc' is not a whole number", dict(steps_list="abc")),
        ("step counts '1e400'", "'1e400' is not a finite number", dict(steps_list="1e400")),
        ("step counts '2.5'", "'2.5' is not a whole number", dict(steps_list="2.5")),
        ("step counts '0, 500'", "out of range", dict(steps_list="0, 500")),
        ("step counts: 3000 entries", f"too long .* at most {MAX_TEXT}", dict(steps_list=MANY)),
        ("step counts: 20 entries", "20 values given, at most 8", dict(steps_list=ones(20))),
        ("step counts empty", "the list is empty", dict(steps_list=" ")),
    ],
    "/scale_embedding": [
        ("factors 'nan'", "'nan' is not a finite number", dict(factors="nan")),
        ("factors '1, inf'", "'inf' is not a finite number", dict(factors="1, inf")),
        ("unknown rule", "not in the list of choices", dict(rule="bogus")),
    ],
    "/compare_guidance": [
        ("scales '-1'", "out of range", dict(scales="-1")),
        ("scales '1,,2'", "entry 2 is empty", dict(scales="1,,2")),
    ],
    "/compare_schedulers": [
        ("schedulers 'ddim, fast'", "unknown 'fast'", dict(names="ddim, fast")),
        ("schedulers 'ddim, DDIM'", "appears more than once", dict(names="ddim, DDIM")),
        ("curve steps '1e400'", "'1e400' is not a finite number", dict(curve="1e400")),
    ],
    "/compare_seeds": [
        ("seeds '-1'", "out of range", dict(seeds="-1")),
        ("seeds '2^64'", "out of range", dict(seeds=str(2**64))),
        ("base steps = 0", STEPS_RANGE, dict(steps=0)),
        ("base guidance = NaN", NOT_FINITE, dict(guidance="nan")),
    ],
    "/grid": [
        ("row values '1,,2'", "entry 2 is empty", dict(row_text="1,,2")),
        (
            "column values: 7 seeds",
            "7 values given, at most 6",
            dict(col_text="1, 2, 3, 4, 5, 6, 7"),
        ),
        ("unknown axis", "not in the list of choices", dict(row_axis="bogus")),
    ],
    "/attention": [
        ("empty prompt", "unconditionally", dict(prompt=""), True),
        ("prompt past 77 tokens", "reads the first 77", dict(prompt=LONG_PROMPT), True),
        ("control characters in the prompt", REMOVED, dict(prompt=CONTROL), True),
        ("token position 99", "token position 99 out of range", dict(token_choice="99"), True),
        (
            "a word not in the prompt",
            "'dog' is not a token of this prompt",
            dict(token_choice="dog"),
            True,
        ),
        ("steps = 0", STEPS_RANGE, dict(steps=0)),
        ("steps = 2.5", "steps must be a whole number", dict(steps=2.5)),
        ("guidance = NaN", NOT_FINITE, dict(guidance="nan")),
        ("seed = 2^64", SEED_RANGE, dict(seed=2**64)),
        (FAST, FAST, dict(scheduler="fast")),
        ("step = 0", "step must be between 1 and 100", dict(step_value=0, average=False)),
        ("step = inf", "step must be a whole number", dict(step_value="inf")),
        ("step = 'abc'", "step must be a whole number", dict(step_value="abc")),
    ],
    "/epsilon_or_flow": [
        ("empty prompt", "type a prompt: both models draw it", dict(prompt="")),
        ("whitespace-only prompt", "type a prompt", dict(prompt=" \n\t  ")),
        (OVER, SHORTEN, dict(prompt=TOO_LONG)),
        ("seed = -1", SEED_RANGE, dict(seed=-1)),
        ("seed = 1.5", "seed must be a whole number", dict(seed=1.5)),
    ],
    "/tokens": [
        ("empty prompt A", "prompt A is empty", dict(a=""), True),
        ("whitespace-only prompts", "prompt A is empty", dict(a=" \n\t", b="  "), True),
        ("prompt A past 77 tokens", "reads the first 77", dict(a=LONG_PROMPT), True),
        (
            "control characters in prompt B",
            "control or invalid characters removed from prompt B",
            dict(b="a red\x00\x07 circle"),
            True,
        ),
        (f"prompt A over {MAX_PROMPT_CHARS} characters", SHORTEN, dict(a=TOO_LONG)),
    ],
    "/similarity": [
        ("no prompts", "type at least one prompt", dict(text="")),
        ("only blank lines", "type at least one prompt", dict(text=" \n\t\n ")),
        ("9 prompts", "9 prompts given, at most 8", dict(text=circles(9))),
        (f"a prompt over {MAX_PROMPT_CHARS} characters", SHORTEN, dict(text=TOO_LONG)),
        ("100,000 characters of prompts", "characters; at most", dict(text="a\n" * 50_000)),
        ("control characters", REMOVED, dict(text="a red\x00 circle\na blue square"), True),
    ],
    "/image_text": [
        ("unknown image source", "not in the list of choices", dict(source="bogus")),
        ("count = 1", "count must be between 2 and 16", dict(count=1)),
        ("count = 2.5", "count must be a whole number", dict(count=2.5)),
        ("count = NaN", "count must be a whole number", dict(count="nan")),
        ("17 captions", "17 prompts given, at most 16", dict(captions_text=circles(17))),
        ("generate with no captions", "type the captions", dict(source=SOURCE_GENERATE)),
        ("upload with no files", "choose at least one image file", dict(source=SOURCE_UPLOAD)),
        (
            "upload with no captions",
            "type one caption a line",
            dict(source=SOURCE_UPLOAD, files=["good"]),
        ),
    ],
    "/norms": [
        ("no prompts", "type at least one prompt", dict(text="  ")),
        ("9 prompts", "9 prompts given, at most 8", dict(text=circles(9))),
    ],
    "/maps": [
        ("no prompts", "type at least one prompt", dict(prompts_text="")),
        ("5 prompts", "5 prompts given, at most 4", dict(prompts_text="\n".join("abcde"))),
        ("seeds '-1'", "out of range", dict(seeds_text="-1")),
        ("seeds '1,,2'", "entry 2 is empty", dict(seeds_text="1,,2")),
        ("seeds 'abc'", "'abc' is not a whole number", dict(seeds_text="abc")),
        (
            "3 prompts × 6 seeds",
            "more than 16 runs",
            dict(prompts_text="a\nb\nc", seeds_text="0, 1, 2, 3, 4, 5"),
        ),
        ("steps = 1", "steps must be between 2 and 50", dict(steps=1)),
        ("steps = 'abc'", "steps must be a whole number", dict(steps="abc")),
        ("guidance = NaN", NOT_FINITE, dict(guidance="nan")),
        ("guidance = 25", "guidance must be between 0 and 20", dict(guidance=25)),
        ("unknown points", "not in the list of choices", dict(what="bogus")),
        ("map seed = -1", "map seed must be between 0 and", dict(map_seed=-1)),
        ("map seed = 1.5", "map seed must be a whole number", dict(map_seed=1.5)),
        ("control characters in a prompt", REMOVED, dict(prompts_text=NUL), True),
    ],
    "/sketch": [
        ("no sketch and no upload", "The sketch is empty", dict(upload=None)),
        ("empty prompt", "unconditionally", dict(prompt=""), True),
        ("prompt past 77 tokens", "reads the first 77", dict(prompt=LONG_PROMPT), True),
        ("strength = 0", "runs no step", dict(strength=0)),
        ("strength = 0.2 with 2 steps", "runs no step", dict(strength=0.2)),
        ("strength = 1.5", "strength must be between 0 and 1", dict(strength=1.5)),
        ("strength = NaN", "strength must be a finite number", dict(strength="nan")),
        ("steps = 0", STEPS_RANGE, dict(steps=0)),
        ("steps = 10^9", STEPS_RANGE, dict(steps=10**9)),
        ("guidance = inf", NOT_FINITE, dict(guidance="inf")),
        ("guidance = -1", "guidance must be between 0 and 30", dict(guidance=-1)),
        ("seed = -1", SEED_RANGE, dict(seed=-1)),
        ("seed = 2^80", SEED_RANGE, dict(seed=2**80)),
        (FAST, FAST, dict(scheduler="fast")),
        ("unknown fit 'stretch'", "not in the list of choices", dict(how="stretch")),
    ],
    "/strength_sweep": [
        ("strengths '0'", "out of range", dict(strengths_text="0")),
        ("strengths '1,,2'", "entry 2 is empty", dict(strengths_text="1,,2")),
        ("strengths 'abc'", "'abc' is not a number", dict(strengths_text="abc")),
        ("strengths '1e400'", "'1e400' is not a finite number", dict(strengths_text="1e400")),
        ("strengths: 9 values", "9 values given, at most 8", dict(strengths_text=ones(9))),
        ("strength 0.2 with 2 steps", "runs no step", dict(strengths_text="0.2, 1")),
        ("no sketch and no upload", "The sketch is empty", dict(upload=None)),
    ],
    "/forward": [
        ("timesteps '1000'", "out of range", dict(timesteps_text="1000")),
        ("timesteps '-1'", "out of range", dict(timesteps_text="-1")),
        ("timesteps '2.5'", "'2.5' is not a whole number", dict(timesteps_text="2.5")),
        ("timesteps '1,,2'", "entry 2 is empty", dict(timesteps_text="1,,2")),
        (
            "timesteps: 9 values",
            "9 values given, at most 8",
            dict(timesteps_text=", ".join(map(str, range(9)))),
        ),
        ("seed = 2^64", SEED_RANGE, dict(seed=2**64)),
        ("no upload, empty prompt", "unconditionally", dict(upload=None, prompt=""), True),
    ],
    "/vae": [
        ("unknown channel '7'", "not in the list of choices", dict(channel="7")),
        ("scale k = 5", "scale k must be between -4 and 4", dict(scale=5)),
        ("scale k = NaN", "scale k must be a finite number", dict(scale="nan")),
        ("scale k = 'abc'", "scale k must be a number", dict(scale="abc")),
        ("no upload, seed = -1", SEED_RANGE, dict(upload=None, seed=-1)),
        (
            "no upload, control characters in the prompt",
            REMOVED,
            dict(upload=None, prompt=NUL),
            True,
        ),
    ],
}

BAD_INPUTS: list[Case] = [
    *(Case(endpoint, *row) for endpoint, rows in VALUE_ROWS.items() for row in rows),
    *[
        Case(endpoint, sent, answer, UPLOAD_INPUTS.get(endpoint, {}), upload=maker)
        for endpoint in ("/sketch", "/strength_sweep", "/forward", "/vae", "/image_text")
        for maker, sent, answer in [
            ("zero_bytes", "a zero-byte picture", "The file is empty \\(0 bytes\\)"),
            ("not_image", "a file that is not a picture", NOT_READ),
            ("bomb", "a decompression bomb (20,000 × 20,000 declared)", "a decompression bomb"),
            ("huge", "a picture of 5,000 × 5,000 pixels", "5000×5000 pixels .* the limit is"),
            ("truncated", "a truncated PNG", f"could not be decoded|{NOT_READ}"),
            ("over_limit", f"a file over {MB} MB", f"the limit is {MB} MB"),
        ]
        if endpoint in ("/sketch", "/image_text") or maker not in ("truncated", "over_limit")
    ],
    *[
        Case("/open_run", sent, answer, upload=maker)
        for maker, sent, answer in [
            ("empty", "a zero-byte file", "empty \\(0 bytes\\)"),
            ("not_zip", "a file that is not a zip", "not a zip file"),
            ("traversal", "a zip with a ../ path", "unexpected path"),
            ("extra", "a zip with a pickle in it", "unexpected file"),
            ("bomb", "a zip bomb (100 MB of zeros)", "compressed suspiciously well"),
            ("bad_json", "trace.json that is not JSON", "not valid JSON"),
            ("deep_json", "trace.json nested 100,000 deep", "not valid JSON"),
            ("wrong_format", "trace.json of another format", "not a diffusion-explorer-trace"),
            (
                "bad_tensors",
                "tensors that are not safetensors (a pickle)",
                "not a valid safetensors",
            ),
            ("bad_shape", "tensors of inconsistent shapes", "inconsistent with"),
            ("huge_steps", "a run of 5,000 steps", "at most"),
            ("bad_settings", "settings of the wrong types", "settings"),
            ("huge_image", "image.png of 30,000 × 30,000 pixels", "too large|not a readable image"),
        ]
    ],
]


def markdown_bad_inputs() -> str:
    """The bad-input table as Markdown: endpoint, what is sent, what it gets."""
    rows = ["| endpoint | sent | answer |", "| --- | --- | --- |"]
    for c in BAD_INPUTS:
        answer = "runs, and says" if c.runs else "refused:"
        words = c.answer.replace("\\", "").replace(".*", "…").replace("|", " / ")
        rows.append(f"| `{c.endpoint}` | {c.sent} | {answer} “{words}” |")
    return "\n".join(rows)
