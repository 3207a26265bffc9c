"""The package's layers and its one import rule, walked with `ast` over every module of explorer/.

    engine   imports no other layer of ours
    studies  imports the engine, and inputs (for its errors)
    inputs   a leaf: imports only inputs
    charts   a leaf: imports only charts
    mini     imports the engine, and only what it needs from it
    ui       may import anything (so may the package root: its lazy names and the command line)
and no import cycles anywhere, counting the imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "explorer"

ALLOWED = {
    "engine": {"engine"},
    "studies": {"studies", "engine", "inputs"},
    "inputs": {"inputs"},
    "charts": {"charts"},
    "mini": {"mini", "engine"},
    "ui": {"ui", "studies", "engine", "inputs", "charts", "mini", "root"},
    "root": {"root", "ui", "studies", "engine", "inputs", "charts", "mini"},
}


def read_tree(package: Path = PACKAGE) -> dict[str, str]:
    """{dotted module name: source} for every .py file under `package`."""
    sources = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        sources[".".join(parts)] = path.read_text()
    return sources


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else "root"


def imports(module: str, source: str, known: set[str]) -> set[str]:
    """The modules of ours that `module` imports, at any depth of its code."""
    found = set()
    is_package = any(k.startswith(module + ".") for k in known)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names} & known
            found |= subs  # from pkg import submodule: the submodule
            if len(subs) < len(node.names):
                found.add(base)  # from module import name (or a package's own names)
    # importing a module always runs its packages' __init__ first: no dependency of its own
    return {m for m in found if m in known and m != module and not module.startswith(m + ".")}


def graph(sources: dict[str, str]) -> dict[str, set[str]]:
    known = set(sources)
    return {m: imports(m, s, known) for m, s in sources.items()}


def breaches(sources: dict[str, str]) -> list[str]:
    """Every import that crosses the layers the wrong way, as 'a imports b (x -> y)'."""
    found = []
    for module, targets in graph(sources).items():
        for target in sorted(targets):
            if target == "explorer":
                continue  # the package root holds no code a layer could depend on
            a, b = layer(module), layer(target)
            if b not in ALLOWED[a]:
                found.append(f"{module} imports {target} ({a} -> {b})")
    return found


def cycles(sources: dict[str, str]) -> list[list[str]]:
    """Import cycles between our modules (a package's __init__ importing its children counts)."""
    edges = graph(sources)
    found, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == "open":
                found.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m, [])
    return found


def test_the_layers_are_folders():
    for name in ("engine", "studies", "inputs", "charts", "ui", "mini", "ui/tabs"):
        assert (PACKAGE / name / "__init__.py").is_file(), name
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py"], top


def test_no_import_breaks_the_rule():
    assert breaches(read_tree()) == []


def test_no_import_cycles():
    assert cycles(read_tree()) == []


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("explorer.engine.capture", "from explorer.ui import layout"),
        ("explorer.engine.decode", "from explorer.studies import anatomy"),
        ("explorer.studies.anatomy", "from explorer.charts import steps"),
        ("explorer.inputs.controls", "import explorer.engine.schedulers"),
        ("explorer.charts.steps", "from explorer.engine.tracefile import Trace"),
        ("explorer.mini.data", "from explorer.studies import clip_scores"),
    ],
)
def test_a_planted_breach_is_caught(module, line):
    sources = read_tree()
    sources[module] = sources[module] + f"\n\ndef planted():\n    {line}\n"
    assert any(b.startswith(f"{module} imports") for b in breaches(sources))


def test_a_planted_cycle_is_caught():
    sources = read_tree()
    sources["explorer.engine.threads"] += "\nfrom explorer.engine import capture\n"
    assert any("explorer.engine.threads" in c for c in cycles(sources))


def test_relative_imports_are_resolved():
    known = {
        "explorer.ui",
        "explorer.ui.common",
        "explorer.ui.tabs",
        "explorer.ui.tabs.clip",
        "explorer.ui.tabs.vae",
    }
    found = imports("explorer.ui.tabs.clip", "from ..common import x\nfrom . import vae, y", known)
    assert found == {"explorer.ui.common", "explorer.ui.tabs.vae"}


def test_the_controls_name_the_engines_schedulers():
    from explorer.engine.schedulers import SCHEDULERS
    from explorer.inputs.controls import CONTROLS, SCHEDULER_NAMES

    assert SCHEDULER_NAMES == tuple(SCHEDULERS) == CONTROLS["scheduler"].choices


def test_modules_and_functions_stay_small():
    """One concept a module: at most 350 lines a module, 80 a function (outside tests)."""
    root = PACKAGE.parent
    files = [*PACKAGE.rglob("*.py"), *root.glob("benchmarks/*.py"), root / "app.py"]
    long_modules, long_functions = [], []
    for path in files:
        source = path.read_text()
        if len(source.splitlines()) > 350:
            long_modules.append(str(path.relative_to(root)))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.end_lineno - node.lineno + 1 > 80:
                    long_functions.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    assert long_modules == [] and long_functions == []
