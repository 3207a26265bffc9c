"""A run as one self-contained HTML file: opens offline in any browser, no server (a teacher
mails it).

Inline: the final image and every step's x_t, x0 and ε as PNG data URIs, the step charts as
interactive plotly figures with plotly.js itself (about 4.8 MB of the file), the settings, the
tokens and a table of every step's numbers. Nothing is fetched when it opens.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from PIL import Image

from explorer.charts.steps import run_figures
from explorer.engine.models import model_key
from explorer.engine.tracefile import Trace
from explorer.studies.anatomy import RunPictures, run_pictures
from explorer.ui import stepterms
from explorer.ui.stepviews import latent_captions, step_captions
from explorer.ui.texts import TEXTS

SETTINGS = ("prompt", "negative_prompt", "model", "scheduler", "steps", "guidance", "seed")
CHARTS = {  # run_figures' keys, in the page's order, with their headings
    "schedule": "Noise schedule: the signal share ᾱ_t of each step",
    "latent": "Coarse to fine: how much x_t and x0 change",
    "frequency": "Which detail settles when",
    "coefficients": "The scheduler's step as a·x_t + b·ε",
    "guidance": "Guidance: the two noise predictions and their difference",
}
FLOW_CHARTS = {  # a flow run's headings, in its own terms
    **CHARTS,
    "schedule": "Flow schedule: σ_t of each step, x_t = σ·ε + (1 − σ)·x0",
    "coefficients": "The Euler step x_next = x_t + (σ_next − σ_t)·v: its step sizes",
    "guidance": "Guidance: the two velocities v_u, v_c and their difference",
}
CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
  color: #222; line-height: 1.45; }
img.px { image-rendering: pixelated; }
.final { width: 256px; border: 1px solid #ccc; }
.strip { display: grid; grid-template-columns: repeat(auto-fill, minmax(84px, 1fr)); gap: 6px; }
.strip figure { margin: 0; font-size: 0.75em; text-align: center; }
.strip img { width: 100%; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; white-space: nowrap; }
.note { color: #555; }
td.text { text-align: left; }
"""


def _uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _strip(title: str, items: list[tuple[Image.Image, str]]) -> str:
    """A gallery of (picture, caption) items, the page's own (`stepviews` captions)."""
    cells = "".join(
        f'<figure><img class="px" src="{_uri(im)}" alt="{html.escape(c)}">'
        f"<figcaption>{html.escape(c)}</figcaption></figure>"
        for im, c in items
    )
    return f'<h3>{html.escape(title)}</h3><div class="strip">{cells}</div>'


def _numbers(trace: Trace) -> str:
    flow = stepterms.objective(trace) == "flow"  # a flow run's own σ_t, not the equivalent ᾱ
    head = f"<tr><th>step</th><th>t</th><th>{'σ_t' if flow else 'ᾱ_t'}</th><th>seconds</th></tr>"
    level = trace.sigmas if flow else trace.alphas_cumprod
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{float(t):.0f}</td><td>{float(a):.4f}</td><td>{s:.3f}</td></tr>"
        for i, (t, a, s) in enumerate(zip(trace.timesteps, level, trace.seconds))
    )
    return f"<table>{head}{rows}</table>"


def report_html(
    trace: Trace, method: str | None = None, pictures: RunPictures | None = None
) -> str:
    """The whole report as one HTML string: `pictures` as decoded already (the page's), else
    decoded here (`method` as `Trace.decode`)."""
    s = trace.settings
    pics = pictures or run_pictures(trace, method)
    img2img = trace.init_latents is not None
    shown = {**s, "model": model_key(s.get("model")) or ""}  # a name, not this machine's path
    settings = "".join(
        f'<tr><th>{k}</th><td class="text">{html.escape(str(shown.get(k, "")))}</td></tr>'
        for k in SETTINGS
    )
    figures = run_figures(trace)
    headings = FLOW_CHARTS if stepterms.objective(trace) == "flow" else CHARTS
    charts = "".join(
        f"<h3>{html.escape(title)}</h3>"
        + figures[key].to_html(full_html=False, include_plotlyjs=(k == 0), default_height=380)
        for k, (key, title) in enumerate(headings.items())
    )
    words = " ".join(f"<code>{html.escape(t)}</code>" for t in trace.prompt_tokens if t)
    title = html.escape(s.get("prompt", "") or "(empty prompt)")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Diffusion Explorer: {title}</title>
<style>{CSS}</style></head><body>
<h1>“{title}”</h1>
<p class="note">A run of Stable Diffusion recorded by Diffusion Explorer: every step, as the
app showed it; the pictures decoded with {pics.method}. Opens with no network.</p>
<img class="px final" src="{_uri(trace.image or pics.latents[-1])}" alt="the final image">
<h2>Settings</h2><table>{settings}</table>
<h2>Every step</h2><p>{html.escape(TEXTS["steps"]).replace("*", "")}</p>
{_strip("x_t: the noisy latent, decoded", latent_captions(pics.latents, img2img))}
{_strip("x0: the clean image predicted at each step", step_captions(trace, pics.x0))}
{_strip(stepterms.label("gallery_noise", trace), step_captions(trace, pics.noise))}
<h2>Charts</h2><p>{html.escape(TEXTS["charts"])}</p>{charts}
<h2>Numbers</h2>{_numbers(trace)}
<h2>What the text encoder read</h2><p>{words}</p>
</body></html>
"""


def write_report(
    trace: Trace, path: str | Path, method: str | None = None, pictures: RunPictures | None = None
) -> Path:
    """Write the report of `trace` to `path` (.html); returns the path."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"{path.name}: a report is an .html file")
    path.write_text(report_html(trace, method, pictures), encoding="utf-8")
    return path
