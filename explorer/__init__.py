"""Diffusion Explorer: run Stable Diffusion and capture what happens inside it.

Nothing heavy loads at import time: the public names below are imported lazily.

    >>> import explorer
    >>> pipe = explorer.load_pipeline()          # the embedded Mini SD
    >>> t = explorer.trace(pipe, "a red circle on a blue background", steps=25)
    >>> t.image, t.latents.shape                 # PIL image, (26, 4, 16, 16)
"""

from importlib import import_module

_LAZY = {
    "trace": "explorer.engine.capture",
    "Trace": "explorer.engine.tracefile",
    "load_pipeline": "explorer.engine.models",
    "SCHEDULERS": "explorer.engine.schedulers",
    "attention_maps": "explorer.studies.word_maps",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")
