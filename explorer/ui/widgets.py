"""Input components built from the controls registry (`explorer.inputs.controls.CONTROLS`).

Gradio's sliders, numbers and dropdowns reject out-of-range values before a handler runs, with
messages such as "Value 0 is less than minimum value 1." that do not name the control. The
components below pass the raw value on instead, so `validate_run` answers every bad
value, from the page or the API, with a message that names the control and says what to change.
"""

from __future__ import annotations

import gradio as gr

from explorer.inputs.controls import CONTROLS


def passthrough(component: gr.components.Component) -> gr.components.Component:
    """Let the raw value through to the handler (an instance override: no subclass, so the
    browser uses the usual widget and gradio writes no stub file)."""
    component.preprocess = lambda payload: payload
    return component


def control_input(name: str, **kwargs) -> gr.components.Component:
    """The input component for control `name`: label, default, range and help from the registry."""
    c = CONTROLS[name]
    common = dict(label=c.label, value=c.default, info=c.help, elem_id=f"control-{name}")
    common.update(kwargs)
    if c.kind == "text":
        return gr.Textbox(**common)
    if c.kind == "choice":
        return passthrough(gr.Dropdown(list(c.choices), **common))
    if name == "seed":  # too wide a range for a slider
        return passthrough(gr.Number(precision=0, **common))
    return passthrough(gr.Slider(c.minimum, c.maximum, step=c.step, **common))
