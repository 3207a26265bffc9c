"""python -m explorer trace: argument errors are plain messages; a run writes the whole folder."""

from __future__ import annotations

import pytest
from PIL import Image

from explorer.cli import build_parser, main
from explorer.engine.tracefile import Trace
from explorer.inputs.controls import CONTROLS, SEED_MAX


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "steps must be between 1 and 100, got 0"),
        (["--steps", "many"], "steps must be a whole number, got 'many'"),
        (["--scheduler", "heun"], "invalid choice: 'heun'"),
        (["--guidance", "-1"], "guidance must be between 0 and 30"),
        (["--height", "60"], "must be a multiple of 8"),
        (["--strength", "0"], "strength must be above 0 and at most 1"),
        (["--image", "/nonexistent.png"], "no such file"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["trace", "a red circle", "--out", str(tmp_path / "o"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _parse(*args: str):
    return build_parser().parse_args(["trace", "x", "--out", "o", *args])


@pytest.mark.parametrize(
    "flag, name, over",
    [
        ("--steps", "steps", "101"),
        ("--guidance", "guidance", "30.5"),
        ("--seed", "seed", str(SEED_MAX + 1)),
        ("--height", "size", "1032"),
        ("--width", "size", "1032"),
        ("--strength", "strength", "1.01"),
    ],
)
def test_the_limits_are_the_controls(flag, name, over, capsys):
    c = CONTROLS[name]
    top = int(c.maximum) if c.kind == "int" else c.maximum
    assert getattr(_parse(flag, str(top)), flag[2:]) == top  # the maximum is accepted
    with pytest.raises(SystemExit) as e:
        _parse(flag, over)  # one past it is refused, in the registry's words
    assert e.value.code == 2
    span = f"{int(c.minimum)} and {top}" if c.kind == "int" else f"{c.minimum:g} and {top:g}"
    assert f"{name} must be between {span}, got {over}" in capsys.readouterr().err


def test_the_defaults_and_choices_are_the_controls():
    args = _parse()
    for name in ("steps", "guidance", "seed", "scheduler", "strength"):
        assert getattr(args, name) == CONTROLS[name].default, name
    assert args.negative == CONTROLS["negative_prompt"].default
    assert args.height is None and _parse("--height", "0").height is None  # 0: the model's size
    for name in CONTROLS["scheduler"].choices:
        assert _parse("--scheduler", name).scheduler == name


def test_strength_that_runs_no_step_is_refused(tmp_path, capsys):
    image = tmp_path / "in.png"
    image.write_bytes(b"")
    with pytest.raises(SystemExit) as e:
        main(
            [
                "trace",
                "x",
                "--out",
                str(tmp_path / "o"),
                "--image",
                str(image),
                "--steps",
                "4",
                "--strength",
                "0.2",
            ]
        )
    assert e.value.code == 2 and "runs no step" in capsys.readouterr().err


def test_missing_model_is_an_error_not_a_traceback(tmp_path, capsys):
    pytest.importorskip("explorer.engine.models")
    code = main(["trace", "x", "--out", str(tmp_path / "o"), "--model", str(tmp_path)])
    assert code == 1 and capsys.readouterr().err.startswith("error: ")


def test_trace_writes_folder(tiny_pipe, tmp_path, capsys):
    pytest.importorskip("explorer.engine.models")
    model = tmp_path / "tiny"
    tiny_pipe.save_pretrained(model)
    out = tmp_path / "run"
    argv = ["trace", "a red circle", "--steps", "3", "--scheduler", "euler", "--seed", "1"]
    assert main([*argv, "--out", str(out), "--model", str(model), "--device", "cpu"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"trace.json", "tensors.safetensors", "image.png", "strip.png"} <= names
    t = Trace.load(out)
    assert t.num_steps == 3 and t.settings["scheduler"] == "euler" and t.settings["seed"] == 1
    assert "wrote" in capsys.readouterr().out
    assert "steps.gif" not in names  # only when asked
    flags = ["--gif", "--webp", "--report"]
    assert main([*argv, "--out", str(out), "--model", str(model), *flags]) == 0
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    for kind in ("gif", "webp"):
        with Image.open(out / f"steps.{kind}") as im:
            assert im.n_frames == 3 + 1  # each step, then the final image
    assert "steps.gif, steps.webp, report.html" in capsys.readouterr().out
