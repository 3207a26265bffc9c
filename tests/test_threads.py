"""explorer.engine.threads: a big batch gets every core only while it is alone, and gives them
back."""

from __future__ import annotations

import threading

import pytest
import torch

from explorer.engine import threads


@pytest.fixture
def one_thread(monkeypatch):
    before = threads.base()
    threads.set_base(1)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    yield
    threads.set_base(before)


def test_wide_alone_uses_every_core_and_restores(one_thread):
    with threads.wide() as widened:
        assert widened and torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1


def test_wide_beside_another_run_keeps_the_setting(one_thread):
    inside, release = threading.Event(), threading.Event()

    def other_run():
        with threads.tracked():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other_run)
    t.start()
    inside.wait(10)
    try:
        with threads.wide() as widened:
            assert not widened and torch.get_num_threads() == 1
    finally:
        release.set()
        t.join()
    with threads.wide() as widened:  # alone again
        assert widened


def test_wide_restores_on_error(one_thread):
    with pytest.raises(RuntimeError), threads.wide():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 1
    with threads.wide() as widened:  # the count went back down too
        assert widened


def test_a_thread_born_during_a_wide_block_computes_with_the_base_count(one_thread):
    """torch gives a thread that first uses it during a wide block every core for good; a
    tracked block (every run) and pin() put it back, so its sums do not depend on the moment."""
    seen = {}

    def born_wide():
        torch.ones(2) + 1  # first torch use, while the main thread is widened
        seen["inherited"] = torch.get_num_threads()
        with threads.tracked():
            seen["tracked"] = torch.get_num_threads()

    with threads.wide() as widened:
        assert widened
        t = threading.Thread(target=born_wide)
        t.start()
        t.join()
    assert seen["inherited"] == 2, "torch no longer leaks the count: pin() may be unneeded"
    assert seen["tracked"] == 1


def test_handlers_run_with_the_base_count_on_any_worker_thread(one_thread):
    """Gradio runs handlers (and each step of a streaming one) on worker threads that may have
    been born during a wide block; `visitor_errors` pins each call and each step."""
    from explorer.ui.common import visitor_errors

    seen, closed = [], []

    @visitor_errors
    def handler():
        seen.append(torch.get_num_threads())

    @visitor_errors
    def streaming():
        try:
            for _ in range(3):
                seen.append(torch.get_num_threads())
                torch.set_num_threads(2)  # as if the next step ran on a thread born wide
                yield len(seen)
        finally:
            closed.append(True)

    def worker():
        torch.ones(2) + 1  # first torch use while widened: this thread inherits every core
        handler()
        steps = streaming()
        assert next(steps) == 2 and next(steps) == 3
        steps.close()  # a cancelled event: the handler's own generator is closed too

    with threads.wide():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen == [1, 1, 1] and closed == [True]
