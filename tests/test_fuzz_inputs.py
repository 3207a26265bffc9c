"""Property tests: whatever a visitor sends, parsing and validation either give a value inside
the stated limits or raise the error meant for visitors (never another exception)."""

from __future__ import annotations

import json
import math
import unicodedata
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.charts import run_figures
from explorer.engine.capture import trace
from explorer.engine.runzip import RunFileError, pack, unpack
from explorer.engine.tracefile import Trace
from explorer.inputs.controls import (
    CONTROLS,
    ControlError,
    validate_float_range,
    validate_int_range,
    validate_run,
)
from explorer.inputs.lists import ListError, parse_numbers
from explorer.inputs.uploads import UploadError, load_upload
from explorer.studies import anatomy
from explorer.ui.tabs.clip import prompt_lines

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.decimals(allow_nan=True).map(str),
)


@given(
    prompt=st.one_of(st.text(max_size=300), anything),
    steps=anything,
    guidance=anything,
    seed=anything,
    scheduler=anything,
)
def test_validate_run_is_in_range_or_a_control_error(prompt, steps, guidance, seed, scheduler):
    try:
        s = validate_run(prompt, "", seed, steps, guidance, scheduler)
    except ControlError:
        return
    for name in ("steps", "seed"):
        c = CONTROLS[name]
        assert isinstance(getattr(s, name), int) and c.minimum <= getattr(s, name) <= c.maximum
    g = CONTROLS["guidance"]
    assert math.isfinite(s.guidance) and g.minimum <= s.guidance <= g.maximum
    assert s.scheduler in CONTROLS["scheduler"].choices
    assert all(unicodedata.category(ch) not in ("Cc", "Cs") for ch in s.prompt)
    assert s.prompt == s.prompt.strip()
    s.prompt.encode("utf-8")  # no lone surrogates left


@given(
    text=st.one_of(st.text(max_size=80), st.text(alphabet="0123456789.,e-+ nainf", max_size=80)),
    lo=st.integers(-100, 100),
    span=st.integers(0, 1000),
    count=st.integers(1, 20),
    integer=st.booleans(),
)
def test_parse_numbers_is_in_limits_or_a_list_error(text, lo, span, count, integer):
    try:
        values = parse_numbers(text, lo=lo, hi=lo + span, max_count=count, integer=integer)
    except ListError as e:
        assert str(e)
        return
    assert 1 <= len(values) <= count
    assert all(math.isfinite(v) and lo <= v <= lo + span for v in values)
    assert all(isinstance(v, int) for v in values) or not integer


@pytest.fixture(scope="module")
def run_zip(tiny_pipe, tmp_path_factory) -> Path:
    return pack(trace(tiny_pipe, "a red circle", steps=2), tmp_path_factory.mktemp("fz"), "run")


def _opens_or_refuses(path: Path) -> None:
    """A spoiled run is refused with a message, or opens and shows (preview views, charts)."""
    try:
        opened = unpack(path)
    except RunFileError as e:
        assert str(e) and "Traceback" not in str(e)
        return
    assert isinstance(opened, Trace)
    anatomy.run_pictures(opened, "preview")
    run_figures(opened)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_spoiled_run_zips_open_or_are_refused(run_zip, tmp_path, data):
    raw = bytearray(run_zip.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):  # flip bytes anywhere
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    path = tmp_path / "spoiled.zip"
    path.write_bytes(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))
    _opens_or_refuses(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(
        [
            "format",
            "version",
            "settings",
            "prompt_tokens",
            "seconds",
            "images",
            "steps",
            "seed",
            "vae_scale_factor",
            "height",
            "prompt",
            "cancelled",
        ]
    ),
    value=json_values,
)
def test_mistyped_trace_json_opens_or_is_refused(run_zip, tmp_path, key, value):
    with zipfile.ZipFile(run_zip) as z:
        members = {Path(n).name: z.read(n) for n in z.namelist()}
    meta = json.loads(members["trace.json"])
    if key in meta:
        meta[key] = value
    else:
        meta["settings"][key] = value
    members["trace.json"] = json.dumps(meta).encode()
    path = tmp_path / "mistyped.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    _opens_or_refuses(path)


@given(value=anything, lo=st.integers(-1000, 1000), span=st.integers(0, 10**6))
def test_validate_int_range_is_in_range_or_a_control_error(value, lo, span):
    try:
        n = validate_int_range("count", value, lo, lo + span)
    except ControlError as e:
        assert str(e).startswith("count ")
        return
    assert type(n) is int and lo <= n <= lo + span


@given(value=anything, lo=st.floats(-100, 100), span=st.floats(0, 100))
def test_validate_float_range_is_finite_in_range_or_a_control_error(value, lo, span):
    try:
        x = validate_float_range("scale k", value, lo, lo + span)
    except ControlError as e:
        assert str(e).startswith("scale k ")
        return
    assert math.isfinite(x) and lo <= x <= lo + span


@given(text=st.one_of(st.text(max_size=400), anything), count=st.integers(1, 8))
def test_prompt_lines_are_clean_and_counted_or_a_control_error(text, count):
    try:
        lines, notes = prompt_lines(text, "prompts", count)
    except ControlError as e:
        assert str(e)
        return
    assert 1 <= len(lines) <= count and all(isinstance(n, str) for n in notes)
    for line in lines:
        assert line and line == line.strip() and "\n" not in line
        assert all(unicodedata.category(ch) not in ("Cc", "Cs") for ch in line)
        line.encode("utf-8")


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300), keep=st.booleans())
def test_any_bytes_open_as_a_picture_or_an_upload_error(data, keep):
    """Random bytes, and a valid PNG with bytes spoiled: a picture, or refused in words."""
    import io

    from PIL import Image

    if keep:
        buf = io.BytesIO()
        Image.new("RGB", (9, 5), "blue").save(buf, "PNG")
        raw = bytearray(buf.getvalue())
        for i, b in enumerate(data[:8]):
            raw[(b * 7 + i) % len(raw)] = b
        data = bytes(raw)
    try:
        loaded = load_upload(data, None)
    except UploadError as e:
        assert str(e) and "Traceback" not in str(e)
        return
    assert loaded.image.mode == "RGB" and sorted(loaded.image.size) == sorted(loaded.original_size)


def test_a_damaged_deflate_stream_is_refused(run_zip, tmp_path):
    """The example hypothesis found: one byte of a member's compressed data zeroed makes zlib
    fail mid-read; that is a damaged upload, refused with a message."""
    raw = bytearray(run_zip.read_bytes())
    raw[44] = 0
    path = tmp_path / "damaged.zip"
    path.write_bytes(bytes(raw))
    with pytest.raises(RunFileError, match="cannot be read|not a valid saved run|not a zip"):
        unpack(path)
