"""Diffusion Explorer: run Stable Diffusion and capture what happens inside it.

Nothing heavy loads at import time: the public names below are imported lazily.

    >>> import explorer
    >>> pipe = explorer.load_pipeline()          # the embedded Mini SD
    >>> t = explorer.trace(pipe, "a red circle on a blue background", steps=25)
    >>> t.image, t.latents.shape                 # PIL image, (26, 4, 16, 16)
"""

import logging
from importlib import import_module


class _NoTorchvisionFallbackNote(logging.Filter):
    """Drops transformers' note that an image processor "requires torchvision (not installed);
    falling back to `…Pil`": importing diffusers' pipelines names CLIP's and SigLIP's image
    processors, which the Explorer never uses, so the note would print at every start. Every
    other message of that logger still prints."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed); falling back to" not in record.getMessage()


# transformers' loggers are the standard library's, by module name: the filter holds before and
# after transformers is imported (the note is logged where a lazy name is looked up)
logging.getLogger("transformers.utils.import_utils").addFilter(_NoTorchvisionFallbackNote())

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
