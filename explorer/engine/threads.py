"""Torch CPU threads: every core for a big batch, while it is the only computation in flight.

The app runs torch with half the cores (`app.py --threads`): OpenMP threads that outnumber the
free cores spin-wait on each other, so with two runs at once, one thread each is fastest. A big
batch (the magnitude sweep: 7 prompts, 14 UNet rows per step) alone on the machine gains from
every core. `tracked()` counts the computations in flight (every traced run and batched call
enters it); `wide()` gives its block every core if nothing else is in flight, and puts the
setting back after.

The thread count is the run's business only, never the moment's: float sums can differ in the
last bit between thread counts, so a picture must not depend on whether other runs were in
flight. `set_base` fixes the count every computation runs with; `pin` gives it to the calling
thread, which matters because torch hands a thread that first uses it during a wide block every
core for the rest of its life. Every tracked block pins itself. Only big batches widen, and they
are compared to single runs within a tolerance anyway (the batch changes the sums too).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_lock = threading.Lock()
_in_flight = 0
_base: int | None = None  # the thread count of every computation; None: torch's at first use


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_base(n: int) -> None:
    """The thread count every computation runs with (the app's --threads)."""
    global _base
    with _lock:
        _base = n
        torch.set_num_threads(n)


def base() -> int:
    """The thread count every computation runs with."""
    global _base
    with _lock:
        if _base is None:
            _base = torch.get_num_threads()
        return _base


def pin() -> None:
    """Give the calling thread the base count, whatever it inherited."""
    n = base()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextmanager
def tracked() -> Iterator[None]:
    """Count the block as a computation in flight, run with the base thread count."""
    global _in_flight
    pin()
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

    Yields whether it got them. Puts the base count back when it ends."""
    global _in_flight
    pin()
    before = base()
    with _lock:
        _in_flight += 1
        alone = _in_flight == 1
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
