"""python -m explorer trace: argument errors are plain messages; a run writes the whole folder."""

from __future__ import annotations

import pytest

from explorer.__main__ import main
from explorer.engine.tracefile import Trace


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "0 is outside [1, 1000]"),
        (["--steps", "many"], "'many' is not a valid int"),
        (["--scheduler", "heun"], "invalid choice: 'heun'"),
        (["--guidance", "-1"], "outside [0, 100]"),
        (["--height", "60"], "not a multiple of 8"),
        (["--strength", "0"], "outside (0, 1]"),
        (["--image", "/nonexistent.png"], "no such file"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["trace", "a red circle", "--out", str(tmp_path / "o"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


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
