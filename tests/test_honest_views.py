"""Issue 24, "every view honest and readable": the start is quiet, counts read as English, API
status lines are plain text, the token table and heatmap agree, the Maps step box answers Enter,
and /forward and /vae run without an upload."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _stderr(*code: str) -> str:
    """What `python *code` prints on stderr, run from the repository root."""
    done = subprocess.run(
        [sys.executable, *code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_cli_help_prints_no_torchvision_warning():
    assert "torchvision" not in _stderr("-m", "explorer", "trace", "--help")


def test_loading_the_pipeline_modules_prints_no_torchvision_warning():
    # importing diffusers' pipelines makes transformers warn that its image processors (which
    # the Explorer never uses) fall back to PIL without torchvision
    code = "import explorer.engine.capture, explorer.engine.models, explorer.mini.package"
    assert "torchvision" not in _stderr("-c", code)


def test_other_transformers_warnings_still_print():
    code = (
        "import explorer.engine.capture\n"
        "from transformers.utils import logging\n"
        "logging.get_logger('transformers.utils.import_utils').warning('another warning')\n"
    )
    assert "another warning" in _stderr("-c", code)


def test_one_step_is_singular():
    from types import SimpleNamespace

    from explorer.inputs.words import count
    from explorer.studies.grid import axis_label
    from explorer.ui.notes import done_text

    assert (count(1), count(2), count(0), count(1, "token")) == (
        "1 step",
        "2 steps",
        "0 steps",
        "1 token",
    )
    assert (axis_label("steps", 1), axis_label("steps", 10)) == ("1 step", "10 steps")
    s = dict(steps=1, seed=3, scheduler_class="DDIMScheduler", cancelled=False)
    assert done_text(SimpleNamespace(settings=s, seconds=[0.5])).startswith("Done: 1 step in ")
    stopped = {**s, "steps": 5, "steps_run": 1, "cancelled": True}
    text = done_text(SimpleNamespace(settings=stopped, seconds=[0.5]))
    assert text.startswith("Done: stopped after 1 of 5 steps in ")
    waited = done_text(SimpleNamespace(settings=s, seconds=[0.5]), waited=1.7)
    assert waited.startswith("Done: 1 step in 1.70 s (the model's steps 0.50 s) · seed 3")


def _cells(row: str) -> int:
    """How many cells a Markdown table row has: split at the pipes that are not escaped."""
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


def test_token_table_and_heatmap_count_positions_alike(tiny_pipe):
    from explorer.ui import clip_handlers
    from explorer.ui.common import AppContext

    ctx = AppContext(load=lambda: tiny_pipe)
    note, _norms, heat = clip_handlers.tokens(ctx, "a red circle", "a blue square")
    table = [line for line in note.splitlines() if line.startswith("|")]
    header = table[0]
    assert header == "| position | token | kind | id |"
    marked = [row for row in table if "startoftext" in row or "endoftext" in row]
    assert len(marked) == 3  # the start, the end and the padding row
    assert all(_cells(row) == _cells(header) for row in table), table
    assert table[2].startswith("| 0 | `<\\|startoftext\\|>` | start |")
    assert list(heat.layout.yaxis.ticktext or heat.data[0].y)[0].startswith("0. ")
    assert list(heat.layout.xaxis.ticktext or heat.data[0].x)[0].startswith("0. ")


def test_typing_a_step_into_the_maps_box_updates_the_view():
    # gradio 6's slider fires `input` as its number box is typed into and `release` only on
    # blur or at the end of a drag: the step must answer both
    from explorer.ui.common import AppContext
    from explorer.ui.layout import build_demo

    demo = build_demo(AppContext(load=lambda: None), ["explorer.ui.tabs.clip"])
    config = demo.get_config_file()
    (step,) = [
        c["id"] for c in config["components"] if c.get("props", {}).get("label") == "Step to show"
    ]
    events = {
        event
        for dep in config["dependencies"]
        for target, event in dep["targets"]
        if target == step
    }
    assert {"input", "release"} <= events


def test_forward_and_vae_run_without_an_upload(tiny_pipe):
    from conftest import tab_client

    tabs = ["explorer.ui.tabs.forward", "explorer.ui.tabs.vae"]
    with tab_client(tiny_pipe, tabs) as client:
        info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        for api_name in ("/forward", "/vae"):
            (upload,) = [p for p in info[api_name]["parameters"] if p["parameter_name"] == "upload"]
            assert upload["parameter_has_default"] and upload["parameter_default"] is None
            status = client.predict(prompt="a red circle", api_name=api_name)[0]
            assert "No upload: generated “a red circle”" in status, (api_name, status)


def test_api_status_lines_are_plain_text(tiny_pipe):
    # the page renders the status as Markdown, but an API caller gets the string itself
    from conftest import tab_client

    with tab_client(tiny_pipe, ["explorer.ui.tabs.generate"]) as client:
        job = client.submit(prompt="a red circle", seed=3, steps=2, api_name="/generate_views")
        statuses = [update[1] for update in job] + [job.result()[1]]
    done = statuses[-1].splitlines()[-1]  # after the notes (here: few "leading" steps)
    assert done.startswith("Done: 2 steps in ") and "seed 3 ·" in done
    pattern = r"Done: 2 steps in ([\d.]+) s \(the model's steps ([\d.]+) s\)"
    waited, model = re.match(pattern, done).groups()
    assert float(waited) >= float(model) > 0  # the visitor's wait includes the model's time
    assert not [s for s in statuses if "**" in s], statuses


def test_unknown_words_are_named_with_what_the_model_knows(mini_pipe):
    from explorer.engine.models import private_tokenizer
    from explorer.inputs.controls import validate_run
    from explorer.inputs.words import unknown
    from explorer.ui.notes import prompt_notes

    tok = private_tokenizer(mini_pipe)
    assert unknown(tok, "an Astronaut riding a horse, astronaut") == [
        "Astronaut",
        "riding",
        "horse",
    ]
    assert unknown(tok, "a large red circle, top left") == []
    settings = validate_run("an astronaut riding a horse", "", 0, 25, 7.5, "ddim")
    notes = prompt_notes(mini_pipe, settings)
    [note] = [n for n in notes if "does not know" in n]
    assert note.startswith('mini-shapes does not know "astronaut", "riding" and "horse"')
    assert "circle" in note and "top left" in note and "<|unk|>" in note
    plain = validate_run("a large red circle", "", 0, 25, 7.5, "ddim")
    assert not any("does not know" in n for n in prompt_notes(mini_pipe, plain))


def test_a_bpe_style_tokenizer_knows_every_word():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from explorer.inputs.words import unknown

    # SD's CLIP tokenizer has no unknown words: its "unknown" token is its end token
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<|endoftext|>": 0}, "<|endoftext|>")),
        unk_token="<|endoftext|>",
        eos_token="<|endoftext|>",
    )
    assert unknown(tok, "an astronaut") == []


def test_the_page_lists_what_the_embedded_model_knows():
    from explorer.mini.known import known_markdown, known_words

    shapes = known_words("mini-shapes")
    assert shapes["shapes"] == ("circle", "square", "triangle", "star", "cross")
    things = known_words("mini-things")
    assert (
        sum(len(v) for k, v in things.items() if k not in ("backgrounds", "sizes", "positions"))
        >= 100
    )
    assert any(w.startswith("cat (kitten") for w in things["animals"])
    assert known_words("some/checkpoint") == {} and known_markdown("some/checkpoint") == ""
    assert "- **backgrounds** (10): white, black" in known_markdown("mini-things")


def test_the_page_states_limits_in_plain_words():
    from explorer.ui.limits import markdown_limits, visitor_limits

    page = visitor_limits(64, "mini-shapes")
    assert "`" not in page and "validate_run" not in page and "layout." not in page
    assert "- **Most steps per run**: 100" in page and "64 × 64 pixels" in page
    assert "`validate_run`" in markdown_limits()  # the developers' table keeps where


def test_the_step_equation_says_how_much_it_leaves_out_in_words(tiny_pipe):
    from explorer.engine.capture import trace
    from explorer.studies import anatomy
    from explorer.ui.stepviews import equation_text

    ddim = anatomy.step_parts(trace(tiny_pipe, "a red circle", steps=3, scheduler="ddim"), 1)
    text = equation_text(ddim.a, ddim.b, ddim.residual)
    assert "exactly: this step is that formula" in text and "up to 0.0%" not in text
    noisy = trace(tiny_pipe, "a red circle", steps=3, scheduler="euler_a")  # fresh noise a step
    ancestral = anatomy.step_parts(noisy, 1)
    assert ancestral.residual > 0.0005
    assert f"all but {ancestral.residual:.1%} of x_(t−1)" in equation_text(
        ancestral.a, ancestral.b, ancestral.residual
    )


def test_each_tab_links_its_strip_to_its_own_views():
    import gradio as gr

    from explorer.ui.architecture import architecture_html
    from explorer.ui.stepviews import StepViews

    ids = {}
    for prefix in ("", "exp-", "sketch-"):  # Generate, Experiments, Sketch
        with gr.Blocks() as demo:
            StepViews.build(prefix)
        ids[prefix] = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
        hrefs = re.findall(r'href="#([^"]+)"', architecture_html(None, prefix))
        assert len(hrefs) == 7 and set(hrefs) <= ids[prefix], (prefix, hrefs)
    assert not ids[""] & ids["exp-"] and not ids["exp-"] & ids["sketch-"]
    assert not ids[""] & ids["sketch-"]


def test_the_api_generate_is_lean_and_saves_like_the_page(tiny_pipe):
    from conftest import tab_client

    with tab_client(tiny_pipe, ["explorer.ui.tabs.generate"]) as client:
        info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        lean, views = info["/generate"], info["/generate_views"]
        assert [p["parameter_name"] for p in lean["parameters"]] == [
            p["parameter_name"] for p in views["parameters"]
        ]
        assert len(lean["returns"]) == 3 and len(views["returns"]) > 20  # image, status, numbers
        image, status, numbers = client.predict(
            prompt="a red circle", steps=3, seed=4, api_name="/generate"
        )
        assert status.splitlines()[-1].startswith("Done: 3 steps in ") and "seed 4" in status
        assert numbers["steps_run"] == 3 and len(numbers["timesteps"]) == 3
        assert numbers["prompt_tokens"][:3] == ["<|startoftext|>", "a", "red"]
        page = client.predict(prompt="a red circle", steps=3, seed=4, api_name="/generate_views")
        assert Path(image).read_bytes() == Path(page[0]).read_bytes()  # the same run
        client.predict(prompt="a blue square", steps=2, api_name="/generate")
        saved = client.predict(api_name="/save_run")  # the lean run is the session's run
        assert "a-blue-square" in Path(saved).name
