"""The command line every ``mini-things`` training stage shares: its work folder, device,
threads, ``--smoke``, ``--export``/``--init`` across sessions, and one option per field of the
stage's ``Config`` (``--steps 3000`` overrides ``Config.steps``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import torch


def parse(
    doc: str,
    config: type,
    smoke: dict,
    argv: list[str] | None,
    threads: int = 2,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
):
    """(the parsed options, the stage's config with the smoke sizes and overrides applied);
    sets torch's CPU threads."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--work", type=Path, default=Path("runs/things"), help="checkpoint, logs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=threads, help="torch CPU threads")
    p.add_argument("--smoke", action="store_true", help="a tiny run for a few steps")
    p.add_argument("--export", type=Path, default=None, help="write the checkpoint (fp16) here")
    p.add_argument("--init", type=Path, default=None, help="start an empty --work from an export")
    if extra is not None:
        extra(p)
    for f in fields(config):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None)
    args = p.parse_args(argv)
    cfg = config(**(smoke if args.smoke else {}))
    for f in fields(config):
        if getattr(args, f.name) is not None:
            setattr(cfg, f.name, getattr(args, f.name))
    torch.set_num_threads(args.threads)
    return args, cfg
