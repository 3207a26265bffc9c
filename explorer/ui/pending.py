"""Outputs hidden behind one line until the visitor's first run: no empty boxes before it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr


@dataclass
class Pending:
    """A one-line hint shown until the first run, and the column of outputs it stands for."""

    hint: gr.Markdown
    column: gr.Column

    def reveal_on(self, *buttons: gr.Button) -> None:
        """Pressing any of `buttons` swaps the hint for the outputs (at once, before the run)."""
        for button in buttons:
            button.click(
                lambda: (gr.Markdown(visible=False), gr.Column(visible=True)),
                None,
                [self.hint, self.column],
                queue=False,
                api_visibility="private",
            )


@contextlib.contextmanager
def until_run(hint: str) -> Iterator[Pending]:
    """Outputs made inside stay hidden behind `hint` until `reveal_on`'s buttons are pressed:
    no empty boxes before a run."""
    line = gr.Markdown(hint, elem_classes=["explain", "until-run"])
    with gr.Column(visible=False) as column:
        yield Pending(line, column)
