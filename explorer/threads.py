"""Torch CPU threads: every core for a big batch, while it is the only computation in flight.

The app runs torch with half the cores (`app.py --threads`): OpenMP threads that outnumber the
free cores spin-wait on each other, so with two runs at once, one thread each is fastest. A big
batch (the magnitude sweep: 7 prompts, 14 UNet rows per step) alone on the machine gains from
every core. `tracked()` counts the computations in flight (every traced run and batched call
enters it); `wide()` gives its block every core if nothing else is in flight, and puts the
setting back after. torch's thread count is process-wide: a run that starts during a wide block
shares the cores with it until the block ends (slower for a moment, never wrong).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_lock = threading.Lock()
_in_flight = 0


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def tracked() -> Iterator[None]:
    """Count the block as a computation in flight."""
    global _in_flight
    with _lock:
        _in_flight += 1
    try:
        yield
    finally:
        with _lock:
            _in_flight -= 1


@contextmanager
def wide() -> Iterator[bool]:
    """A tracked block that runs with every core when it is the only one in flight.

    Yields whether it got them. Restores the previous thread count when it ends."""
    global _in_flight
    with _lock:
        _in_flight += 1
        alone = _in_flight == 1
        before = torch.get_num_threads()
        widen = alone and cores() > before
        if widen:
            torch.set_num_threads(cores())
    try:
        yield widen
    finally:
        with _lock:
            if widen:
                torch.set_num_threads(before)
            _in_flight -= 1
