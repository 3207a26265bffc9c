"""What every tab shares: the app context, the engine wrapper, error reporting, small formatters.

A tab module exposes `TITLE` and `create_tab(ctx: AppContext)`; it builds its components inside
the open `gr.Blocks` and wires its events to module-level handlers with `bind`. Tabs get the
pipeline only through `ctx.pipe()`, so nothing loads until a visitor runs something (or the app
warms up at launch), and run it only through `run_engine`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from explorer.engine import threads
from explorer.engine.models import ModelError
from explorer.engine.runzip import RunFileError
from explorer.inputs.errors import VisitorError

log = logging.getLogger("explorer.ui")

# Small images (the Mini model's 64x64) are enlarged by the browser without smoothing.
CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; image-rendering: crisp-edges; }
.pixelated .thumbnail-item img, .pixelated .thumbnail-lg img { object-fit: contain; }
/* galleries: as many columns as fit (every frame reachable on a phone), captions under */
.pixelated .grid-container { grid-template-columns: repeat(auto-fill, minmax(76px, 1fr)) !important;
  grid-auto-rows: auto !important; margin-top: 30px; }
.pixelated .grid-wrap.fixed-height { max-height: none !important; height: auto !important;
  min-height: 0 !important; }
.pixelated .thumbnail-item { display: flex; flex-direction: column; height: auto !important;
  aspect-ratio: auto !important; }
.pixelated .thumbnail-item img { aspect-ratio: 1; width: 100%; height: auto; }
.pixelated .caption-label { position: static !important; transform: none !important;
  max-width: 100% !important; white-space: normal !important; overflow: visible !important;
  background: none !important; padding: 2px 0 0 0 !important; font-size: 0.8em; line-height: 1.2;
  text-align: center; color: var(--body-text-color); }
.pixel-image img { width: 100%; height: 100%; object-fit: contain; }
/* galleries of wide strips (a latent's channels side by side): wide tiles, the strip's shape */
.wide-tiles .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)) !important; }
.wide-tiles .thumbnail-item img { aspect-ratio: auto; }
/* tables: numbers and names never broken across lines; a table wider than a phone scrolls */
.prose table { display: block; max-width: 100%; overflow-x: auto; }
.prose table td { white-space: nowrap; }
.prose table th { word-break: normal; overflow-wrap: normal; }  /* headers wrap at spaces */
.explain { font-size: 0.92em; opacity: 0.9; }
.arch-strip { display: flex; flex-wrap: wrap; align-items: stretch; gap: 6px; margin: 4px 0; }
.arch-box { display: block; padding: 6px 10px; border: 1px solid var(--border-color-primary);
  border-radius: 8px; text-decoration: none !important; color: var(--body-text-color) !important;
  background: var(--block-background-fill); min-width: 110px; }
.arch-box:hover { border-color: var(--color-accent); }
.arch-box b { display: block; font-size: 0.95em; }
.arch-box code { font-size: 0.8em; }
.arch-arrow { align-self: center; font-size: 1.2em; opacity: 0.6; }
/* the tour's progress: one dot a stop */
.tour-dots { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin: 6px 0; }
.tour-dot { width: 12px; height: 12px; border-radius: 50%;
  border: 2px solid var(--color-accent); background: transparent; }
.tour-dot.done { background: var(--color-accent); opacity: 0.45; }
.tour-dot.now { background: var(--color-accent); transform: scale(1.3); }
.tour-dots b { margin-left: 8px; font-size: 0.95em; }
#tour-gallery .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(128px, 1fr)) !important; }
"""

MAX_FILE_SIZE = "200mb"  # largest upload (a saved run); runzip checks more finely
QUEUE_SIZE = 64  # requests waiting at most; more are told the queue is full
RUN_CONCURRENCY = 2  # single runs at once (CPU cores are few); heavier tabs should use 1
VIEW_CONCURRENCY = 4  # redraws of views from a finished run (no model call)
# The engine's errors whose messages are written for visitors (the engine imports no other
# layer, so they cannot subclass `VisitorError`): a model that cannot be used, a bad saved run.
VISITOR_ENGINE_ERRORS = (ModelError, RunFileError)


@dataclass
class AppContext:
    """What the app hands every tab: how to get the pipeline, and the operator's options."""

    load: Callable[[], Any]  # returns the (cached) pipeline
    model_name: str = "mini-shapes"
    device: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    fixed_size: int | None = None  # the one image size the model makes (Mini: 64); None: any
    embedded: str | None = None  # "mini-shapes" or "mini-things" for an embedded model
    # What a tab lets other tabs fill: links[tab] = {"components": {name: component}, and
    # optionally "show": trace -> {name: value}} (the Tour's "open in its tab"); `late` holds
    # wiring to run once every tab exists, given the page's gr.Tabs.
    links: dict[str, dict] = field(default_factory=dict)
    late: list[Callable] = field(default_factory=list)

    def pipe(self) -> Any:
        """The pipeline (loaded on first use, then cached by the loader)."""
        return self.load()


class StopFlags:
    """One stop flag per browser session, so Stop cancels only the visitor's own run.

    `start` before a run, `stop` from the Stop button, `finish` in the run's `finally`.
    """

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, key: str) -> threading.Event:
        with self._lock:
            self._flags[key] = flag = threading.Event()
        return flag

    def stop(self, key: str) -> None:
        with self._lock:
            flag = self._flags.get(key)
        if flag is not None:
            flag.set()

    def finish(self, key: str, flag: threading.Event) -> None:
        flag.set()  # a run abandoned mid-way stops at its next step
        with self._lock:
            if self._flags.get(key) is flag:
                del self._flags[key]


def session_key(request: gr.Request | None) -> str:
    """The browser session (or gradio_client) a request comes from."""
    return getattr(request, "session_hash", None) or "anonymous"


def gpu(fn: Callable) -> Callable:
    """`spaces.GPU` on a Hugging Face ZeroGPU Space (a no-op elsewhere); identity without spaces."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(fn)


# ---- the one way a handler runs the model -----------------------------------------------------

_IN_ENGINE: contextvars.ContextVar[bool] = contextvars.ContextVar("in_engine", default=False)


def in_engine() -> bool:
    """True while `run_engine` runs its call (tests check every model call happens inside it)."""
    return _IN_ENGINE.get()


@contextlib.contextmanager
def _inside() -> Iterator[None]:
    token = _IN_ENGINE.set(True)
    try:
        yield
    finally:
        _IN_ENGINE.reset(token)


@gpu
def _call(fn: Callable, args: tuple, kwargs: dict):
    with _inside():
        return fn(*args, **kwargs)


@gpu
def _stream(fn: Callable, args: tuple, kwargs: dict) -> Iterator:
    steps = fn(*args, **kwargs)
    try:
        while True:
            with _inside():  # around each step only: the caller runs between them
                try:
                    item = next(steps)
                except StopIteration:
                    return
            yield item
    finally:
        with _inside():
            steps.close()


def run_engine(fn: Callable, *args, **kwargs):
    """Run `fn(*args, **kwargs)`, a call that runs a model, as the GPU function of a ZeroGPU Space.

    Every handler reaches the pipeline's (or a CLIP's) modules through here and nowhere else. A
    generator function streams: its items are yielded as they come (on a ZeroGPU Space, out of the
    GPU worker). Loading a model, reading files and arithmetic on results stay outside.
    """
    if inspect.isgeneratorfunction(fn):
        return _stream(fn, args, kwargs)
    return _call(fn, args, kwargs)


def bind(fn: Callable, *first, outputs: dict[str, Any] | None = None) -> Callable:
    """`fn(*first, *values)` as a gradio event handler, its errors reported (`visitor_errors`).

    `first` (the tab's context, its stop flags) is bound. The handler's signature is `fn`'s less
    the bound arguments, so the API keeps `fn`'s parameter names and gradio still injects
    `gr.Request`, `gr.Progress` and event data. With `outputs` (name -> component, in the event's
    output order) `fn` returns or yields dicts keyed by those names, any subset of them, and gradio
    gets them keyed by component; an empty dict changes nothing.
    """
    by_name = (lambda values: values) if outputs is None else functools.partial(_keyed, outputs)
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def handler(*args, **kwargs):
            steps = fn(*first, *args, **kwargs)
            try:
                for values in steps:
                    yield by_name(values)
            finally:  # a cancelled event closes this generator: close fn's too
                steps.close()

    else:

        @functools.wraps(fn)
        def handler(*args, **kwargs):
            return by_name(fn(*first, *args, **kwargs))

    signature = inspect.signature(fn)
    names = list(signature.parameters)[: len(first)]
    handler.__signature__ = signature.replace(
        parameters=list(signature.parameters.values())[len(first) :]
    )
    handler.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k not in names}
    return visitor_errors(handler)


def _keyed(outputs: dict[str, Any], values: dict[str, Any]) -> dict:
    if not values:
        return gr.skip()
    return {outputs[name]: value for name, value in values.items()}


def visitor_errors(fn: Callable) -> Callable:
    """Report a handler's errors to the visitor: their own words for bad input, one line else.

    `gr.Error` passes through. `VisitorError` (every inputs and studies error a visitor may cause)
    and the engine's errors written for visitors (`VISITOR_ENGINE_ERRORS`) show their message as
    it is. Anything else is a bug: it is logged in full on the server, and the visitor is told so
    in one line, without its text (a torch or diffusers message is no advice).
    Works for plain functions and generators. Each call (each step of a generator) first gives
    its worker thread the app's base torch thread count (`threads.pin`): a gradio worker born
    during a widened batch would otherwise keep every core for good.
    """

    def report(e: Exception) -> gr.Error:
        if isinstance(e, gr.Error):
            return e
        if isinstance(e, (VisitorError, *VISITOR_ENGINE_ERRORS)):
            return gr.Error(str(e), print_exception=False)
        log.exception("handler %s failed", fn.__name__)
        return gr.Error(internal_error(e), print_exception=False)

    if _is_generator(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            steps = fn(*args, **kwargs)
            try:
                while True:
                    threads.pin()  # gradio may run each step on another worker thread
                    try:
                        value = next(steps)
                    except StopIteration:
                        return
                    yield value
            except Exception as e:  # noqa: BLE001 - reported to the visitor, logged above
                raise report(e) from None
            finally:  # a cancelled event closes this generator: close the handler's too
                steps.close()

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            threads.pin()  # the handler's torch work runs with the app's thread count
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            raise report(e) from None

    return wrapper


def internal_error(e: BaseException) -> str:
    """What a visitor is told of an error that is not about their input."""
    return (
        f"Internal error ({type(e).__name__}) — this is a bug, not your input; "
        "the server log has details."
    )


def _is_generator(fn: Callable) -> bool:
    return inspect.isgeneratorfunction(fn)


def explain(text: str) -> gr.Markdown:
    """A short plain-words explanation placed beside a view."""
    return gr.Markdown(text, elem_classes=["explain"])


def pixel_image(label: str, height: int = 160, **kwargs) -> gr.Image:
    """An output image shown enlarged without smoothing."""
    return gr.Image(
        label=label,
        format="png",
        height=height,
        interactive=False,
        elem_classes=["pixelated", "pixel-image"],
        buttons=["download"],
        **kwargs,
    )


def pixel_gallery(label: str, columns: int = 8, wide: bool = False, **kwargs) -> gr.Gallery:
    """An output gallery of small pictures, enlarged without smoothing (`wide`: of wide strips)."""
    return gr.Gallery(
        label=label,
        format="png",
        columns=columns,
        height="auto",
        object_fit="contain",
        interactive=False,
        elem_classes=["pixelated", "wide-tiles"] if wide else ["pixelated"],
        **kwargs,
    )


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KB'."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
