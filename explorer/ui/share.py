"""The run shown on the page, as a file to keep or send: a zip to reopen, a GIF, an HTML report."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import gradio as gr

from explorer.engine import animate as animation
from explorer.engine.runzip import pack
from explorer.ui.report import write_report
from explorer.ui.stepviews import RunView


def _name(view: RunView | None, what: str) -> tuple[Path, str]:
    """(a fresh folder, the file's stem: prompt and seed); a clear error when nothing is shown."""
    if view is None:
        raise gr.Error(f"Nothing to {what} yet: run a prompt (or open a run) first.")
    s = view.trace.settings
    slug = re.sub(r"[^a-z0-9]+", "-", s.get("prompt", "").lower()).strip("-")[:40]
    folder = Path(tempfile.mkdtemp(prefix="explorer-"))
    return folder, f"{slug or 'unconditional'}-seed{s.get('seed', 0)}"


def save_run(view: RunView | None) -> str:
    """The run shown, as a zip (its path)."""
    folder, stem = _name(view, "save")
    return str(pack(view.trace, folder, stem))


def animate_run(view: RunView | None) -> str:
    """The run shown as an animated GIF (its path): each step's x_t beside its x0."""
    folder, stem = _name(view, "animate")
    p = view.pictures
    frames = animation.frames(p.latents, p.x0, view.trace.timesteps.tolist())
    return str(animation.save(frames, folder / f"{stem}.gif"))


def report_run(view: RunView | None) -> str:
    """The run shown as one self-contained HTML page (its path), its pictures as shown."""
    folder, stem = _name(view, "report")
    return str(write_report(view.trace, folder / f"{stem}.html", pictures=view.pictures))
