"""The controls registry: validation (table-driven and fuzzed) and the README documenting it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from explorer.engine.schedulers import SCHEDULERS
from explorer.engine.tokens import token_note
from explorer.inputs.controls import (
    CONTROLS,
    SEED_MAX,
    ControlError,
    clean_text,
    markdown_table,
    validate_run,
    validate_size,
    validate_strength,
)

README = Path(__file__).parents[1] / "README.md"


def test_defaults_validate_to_themselves():
    s = validate_run()
    for name, c in CONTROLS.items():
        if name != "strength":  # img2img only: checked by validate_strength
            assert getattr(s, name) == c.default
    assert s.notes == ()
    assert validate_strength(CONTROLS["strength"].default, s.steps) == CONTROLS["strength"].default


def test_scheduler_choices_are_the_engines():
    assert CONTROLS["scheduler"].choices == tuple(SCHEDULERS)


def test_readme_holds_the_generated_controls_table():
    assert markdown_table() in README.read_text()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 0}, "steps must be between 1 and 100"),
        ({"steps": -3}, "steps must be between"),
        ({"steps": 10**9}, "steps must be between"),
        ({"steps": 2.5}, "whole number"),
        ({"steps": "many"}, "whole number"),
        ({"steps": True}, "whole number"),
        ({"steps": math.nan}, "whole number"),
        ({"guidance": -1}, "guidance must be between 0 and 30"),
        ({"guidance": math.nan}, "finite"),
        ({"guidance": math.inf}, "finite"),
        ({"guidance": "1e400"}, "finite"),
        ({"guidance": None}, "must be a number"),
        ({"seed": -1}, "seed must be between 0"),
        ({"seed": SEED_MAX + 1}, "seed must be between"),
        ({"scheduler": "fastest"}, "choose one of: ddim"),
        ({"scheduler": None}, "unknown scheduler"),
        ({"prompt": 12}, "prompt must be text"),
        ({"prompt": "x" * 5000}, "shorten it"),
    ],
)
def test_bad_values_say_what_to_change(kwargs, message):
    with pytest.raises(ControlError, match=message):
        validate_run(**kwargs)


@pytest.mark.parametrize(
    "kwargs, field, value",
    [
        ({"steps": 4.0}, "steps", 4),
        ({"steps": " 7 "}, "steps", 7),
        ({"seed": SEED_MAX}, "seed", SEED_MAX),
        ({"guidance": "3.5"}, "guidance", 3.5),
        ({"scheduler": " Euler_A "}, "scheduler", "euler_a"),
        ({"prompt": "  a red\tcircle\n"}, "prompt", "a red circle"),
        ({"prompt": "a 🔴 circle"}, "prompt", "a 🔴 circle"),
    ],
)
def test_forgiven_values(kwargs, field, value):
    assert getattr(validate_run(**kwargs), field) == value


def test_empty_prompt_runs_unconditionally_and_says_so():
    s = validate_run(prompt="   ")
    assert s.prompt == ""
    assert any("unconditionally" in n for n in s.notes)


def test_control_characters_and_lone_surrogates_are_removed():
    text, notes = clean_text("prompt", "red\x00 circle\ud800\x1b")
    assert text == "red circle"
    assert "3 control or invalid characters removed" in notes[0]


def test_token_note():
    assert token_note(77, 77) is None
    assert "first 77" in token_note(120, 77)


@given(
    prompt=st.one_of(st.text(max_size=300), st.none(), st.integers()),
    steps=st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=8), st.booleans()),
    guidance=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8)),
    seed=st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats()),
    scheduler=st.one_of(st.sampled_from(list(SCHEDULERS)), st.text(max_size=10)),
)
def test_validation_fuzz_only_raises_control_error(prompt, steps, guidance, seed, scheduler):
    try:
        s = validate_run(prompt, "", seed, steps, guidance, scheduler)
    except ControlError as e:
        assert str(e)
        return
    assert isinstance(s.steps, int) and 1 <= s.steps <= 100
    assert math.isfinite(s.guidance) and 0 <= s.guidance <= 30
    assert isinstance(s.seed, int) and 0 <= s.seed <= SEED_MAX
    assert s.scheduler in SCHEDULERS
    s.prompt.encode("utf-8")  # no lone surrogates left


@pytest.mark.parametrize(
    "value,fixed,expected",
    [(0, None, 0), (None, 64, 0), (64, 64, 0), (512, None, 512), (72, None, 72)],
)
def test_size_is_a_multiple_of_8_or_the_models_own(value, fixed, expected):
    assert validate_size(value, fixed) == expected


@pytest.mark.parametrize(
    "value,fixed,message",
    [
        (128, 64, "makes 64×64 images only"),
        (100, None, "multiple of 8"),
        (32, None, "from 64"),
        (2048, None, "between 0 and 1024"),
        ("big", None, "whole number"),
    ],
)
def test_bad_sizes_are_named(value, fixed, message):
    with pytest.raises(ControlError, match=message):
        validate_size(value, fixed)


def test_size_reaches_the_trace_only_when_set():
    assert "height" not in validate_run().trace_kwargs()
    kw = validate_run(size=256).trace_kwargs()
    assert kw["height"] == kw["width"] == 256


def _error_classes(package: str) -> dict[str, type]:
    """Every exception class defined in a module of `package` (imported), by qualified name."""
    import importlib
    import inspect
    import pkgutil

    pkg = importlib.import_module(package)
    found = {}
    for info in pkgutil.walk_packages(pkg.__path__, f"{package}."):
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_inputs_and_studies_error_is_a_visitor_error():
    from explorer.inputs.errors import VisitorError

    errors = {**_error_classes("explorer.inputs"), **_error_classes("explorer.studies")}
    expected = {"ControlError", "ListError", "UploadError", "ClipMissing"}
    assert expected <= {name.rsplit(".", 1)[1] for name in errors}  # the walk finds them
    assert [n for n, cls in errors.items() if not issubclass(cls, VisitorError)] == []
    assert issubclass(VisitorError, ValueError)  # callers that catch ValueError still do
