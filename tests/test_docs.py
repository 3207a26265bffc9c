"""The README and docs/*.md say what is true: every code block in them runs as written.

- every ```python block runs, each in a fresh namespace, in a temporary folder, with the hub
  off; a block that talks to the app (`Client(...)`) runs against the app launched here on a
  free loopback port, its address put in place of http://127.0.0.1:7860/;
- every `python ...` command of a ```bash block names options its program has (checked against
  `--help`; `python app.py` ones are parsed by the app's own parser), and the command-line trace
  runs for real;
- ```console and ```text blocks are not run: they are the few that cannot run offline.
Also: the README keeps the two commands CI runs, and the packaging (pyproject.toml) matches
requirements.txt, requirements-test.txt and the files the package needs.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
ADDRESS = "http://127.0.0.1:7860/"
RUN_COMMAND = "pip install torch==2.13.0 -r requirements.txt && python app.py"
TEST_COMMAND = (
    "pip install torch==2.13.0 -r requirements-test.txt && (test -x /usr/bin/chromium -a -f "
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || (apt-get update && apt-get install -y "
    "chromium fonts-noto-color-emoji)) && python -m pytest"
)


def blocks(language: str) -> list[tuple[str, str]]:
    """(where: 'FILE:LINE', code) of every fenced block of `language` in the pages."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            if m.group(1) == language:
                line = text.count("\n", 0, m.start()) + 1
                found.append((f"{page.relative_to(ROOT)}:{line}", m.group(2)))
    return found


def commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `python`) of every `python ...` command in the bash blocks."""
    found = []
    for where, code in blocks("bash"):
        for line in code.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value python ...
                words = words[1:]
            if words[:1] == ["python"] and "&&" not in words:
                found.append((where, words[1:]))
    return found


PYTHON = blocks("python")
OFFLINE = [b for b in PYTHON if "Client(" not in b[1]]
ONLINE = [b for b in PYTHON if "Client(" in b[1]]
COMMANDS = commands()


def run_block(where: str, code: str, folder: Path, monkeypatch) -> None:
    monkeypatch.chdir(folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})  # noqa: S102 - our own docs


def test_the_pages_have_blocks_to_run():
    assert len(OFFLINE) >= 4 and len(ONLINE) >= 5 and len(COMMANDS) >= 10
    assert any(argv[:2] == ["-m", "explorer"] for _, argv in COMMANDS)


@pytest.mark.parametrize("where, code", OFFLINE, ids=[w for w, _ in OFFLINE])
def test_python_block_runs(where, code, tmp_path, monkeypatch):
    run_block(where, code, tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def app_url():
    import app
    from explorer.ui.layout import launch_options

    demo, ctx = app.build()
    ctx.pipe()  # load before the first request
    demo.queue().launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options()
    )
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.mark.slow
@pytest.mark.parametrize("where, code", ONLINE, ids=[w for w, _ in ONLINE])
def test_client_block_runs_against_the_app(where, code, app_url, tmp_path, monkeypatch):
    assert ADDRESS in code, f"{where}: a client block connects to {ADDRESS}"
    run_block(where, code.replace(ADDRESS, app_url), tmp_path, monkeypatch)


def program(argv: list[str]) -> tuple[str, ...]:
    """The program an argv runs: ('benchmarks/x.py',), ('-m', 'explorer', 'trace'), ..."""
    if argv[0] == "-m":
        sub = argv[2:3] if argv[1] == "explorer" else []
        return (*argv[:2], *sub)
    return (argv[0],)


@functools.cache
def help_text(prog: tuple[str, ...]) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, *prog, "--help"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, f"python {' '.join(prog)} --help failed:\n{out.stderr[-2000:]}"
    return out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("where, argv", COMMANDS, ids=[f"{w} {a[0]}" for w, a in COMMANDS])
def test_bash_command_uses_real_options(where, argv):
    options = [a.split("=")[0] for a in argv if a.startswith("--")]
    if argv[0] == "app.py":
        import app

        try:
            app.parse_args(argv[1:], env={})
        except SystemExit as e:  # --help exits 0; an unknown option or a bad value exits 2
            assert e.code == 0, f"{where}: python {' '.join(argv)} is refused by the app"
        return
    text = help_text(program(argv))
    missing = [o for o in options if o not in text]
    assert not missing, f"{where}: python {' '.join(argv)}: not in --help: {missing}"


@pytest.mark.slow
def test_the_command_line_trace_runs_as_written(tmp_path):
    traces = [argv for _, argv in COMMANDS if argv[:3] == ["-m", "explorer", "trace"]]
    assert traces, "the README shows `python -m explorer trace ...`"
    argv = traces[0]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    folder = tmp_path / argv[argv.index("--out") + 1]
    assert (folder / "strip.png").is_file() and (folder / "trace.json").is_file()


def test_the_readme_keeps_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert RUN_COMMAND in readme and TEST_COMMAND in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q torch==2.13.0 -r requirements-test.txt" in ci
    assert readme.startswith("---\ntitle: Diffusion Explorer\nsdk: gradio\n")  # the Space's
    assert f"sdk_version: {gradio_pin()}\n" in readme.split("\n---\n")[0]


def gradio_pin() -> str:
    pins = [r for r in requirement_lines("requirements.txt") if r.startswith("gradio==")]
    return pins[0].split("==")[1]


def test_linked_files_exist():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


# ---- packaging ---------------------------------------------------------------------------


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(("#", "-r"))]


def test_the_package_reads_its_dependencies_from_requirements_txt():
    project = pyproject()["project"]
    assert project["name"] == "diffusion-explorer" and project["requires-python"] == ">=3.11"
    assert project["dynamic"] == ["dependencies"]
    dynamic = pyproject()["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"] == {"file": ["requirements.txt"]}
    assert project["optional-dependencies"]["test"] == requirement_lines("requirements-test.txt")
    assert project["scripts"]["diffusion-explorer"] == "explorer.ui.server:main"


def test_the_package_data_holds_every_file_explorer_needs():
    data = pyproject()["tool"]["setuptools"]["package-data"]
    covered = set()
    for package, patterns in data.items():
        folder = ROOT.joinpath(*package.split("."))
        covered |= {p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}
    needed = {
        p
        for p in (ROOT / "explorer").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert any(p.suffix == ".safetensors" for p in needed)
    assert needed <= covered, sorted(str(p.relative_to(ROOT)) for p in needed - covered)


def test_app_py_is_the_server_module():
    import app
    from explorer.ui import server

    for name in ("build", "main", "parse_args", "set_threads", "warm_up"):
        assert getattr(app, name) is getattr(server, name)
    args = app.parse_args([], env={"EXPLORER_MODEL": "some/model", "PORT": "8000"})
    assert (args.model, args.port, args.host) == ("some/model", 8000, "127.0.0.1")


def test_docs_hold_the_limits_and_the_bad_input_table():
    from explorer.ui.limits import markdown_bad_inputs, markdown_limits

    text = (ROOT / "docs" / "limits.md").read_text()
    assert markdown_limits() in text
    assert markdown_bad_inputs() in text
