"""Helpers the trace bars share: jobs in threads started together, traces compared field by field,
a pipeline checked to be left as it was by traces that succeed, fail and are cancelled."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch

from explorer.engine.tracefile import TENSOR_FIELDS


def in_threads(run: Callable, jobs: Sequence[tuple]) -> list:
    """`run(*job)` for every job, each in its own thread, all released at once by a barrier."""
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def worker(k):
        barrier.wait()
        results[k] = run(*jobs[k])

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(len(jobs))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


def assert_threads_match_serial(run: Callable, jobs: Sequence[tuple]) -> None:
    """`run(*job)` gives the same trace run in threads all at once as run one after another."""
    serial = [run(*job) for job in jobs]
    for a, b in zip(serial, in_threads(run, jobs)):
        assert_same_traces(a, b)


def assert_same_traces(a, b, fields: Sequence[str] = TENSOR_FIELDS) -> None:
    """Two traces hold equal tensors in `fields` (None in both, or bit for bit) and one image."""
    for name in fields:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or torch.equal(x, y), name
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def assert_left_alone(pipe, net, run: Callable) -> tuple:
    """`run(**kwargs)` traces `pipe`; a run that succeeds, one whose `on_step` raises and one
    cancelled after two steps all leave its components, configs and the hooks of `net` (its
    UNet or transformer) as they were. Returns the cancelled trace and its partial records."""
    parts, config, schedule = dict(pipe.components), dict(pipe.config), dict(pipe.scheduler.config)

    def untouched():
        assert all(getattr(pipe, k) is v for k, v in parts.items())
        assert dict(pipe.config) == config and dict(pipe.scheduler.config) == schedule
        assert not net._forward_hooks_with_kwargs and not net._forward_hooks

    run(steps=2, guidance=3.0)
    untouched()

    def boom(partial):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        run(steps=3, on_step=boom)
    untouched()
    seen: list = []
    cancelled = run(steps=4, on_step=seen.append, should_stop=lambda: len(seen) >= 2)
    untouched()
    assert cancelled.num_steps == 2 and cancelled.settings["cancelled"]
    assert cancelled.image is not None and [p.num_steps for p in seen] == [1, 2]
    return cancelled, seen
