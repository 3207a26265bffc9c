"""The Generate tab's example prompts, per embedded model, as buttons that fill the controls."""

from __future__ import annotations

import gradio as gr

from explorer.inputs.words import count

EXAMPLES = [  # prompt, negative prompt, seed, steps, guidance, scheduler
    ["a large red circle on a blue background", "", 0, 25, 7.5, "ddim"],
    ["a small yellow star in the top left on a black background", "", 1, 25, 7.5, "euler"],
    ["a green triangle, white background, center", "", 2, 10, 5.0, "dpmpp_2m"],
    ["a purple background with a large orange square at the bottom right", "", 3, 25, 7.5, "unipc"],
    ["a large white cross on a red background", "", 4, 1, 7.5, "ddim"],
]
THINGS_EXAMPLES = [  # the same for mini-things
    ["a large cat on a blue background", "", 0, 25, 5.0, "ddim"],
    ["a small rocket in the top left, black background", "", 1, 25, 5.0, "euler"],
    ["a dog on the left and a tree on the right", "", 2, 25, 5.0, "dpmpp_2m"],
    ["a pizza and a guitar on a white background", "", 3, 10, 5.0, "unipc"],
    ["a large elephant on a green background", "", 4, 1, 5.0, "ddim"],
]


def example_label(prompt: str, steps: int, scheduler: str) -> str:
    """An example's button: its prompt, and what is unusual about its settings."""
    extra = [count(steps)] if steps != 25 else []
    extra += [scheduler] if scheduler != "ddim" else []
    return " · ".join([prompt, *extra])


def example_buttons(examples: list[list], inputs: list) -> None:
    """One small button per example (they wrap on a phone, where a table would not fit); a
    click fills the controls, and Run runs them."""
    gr.Markdown("**Try one** (fills the settings above; then press Run):")
    with gr.Row(elem_classes=["examples"]):
        for values in examples:
            button = gr.Button(example_label(values[0], values[3], values[5]), size="sm")
            button.click(
                lambda v=values: tuple(v), None, inputs, queue=False, api_visibility="private"
            )
