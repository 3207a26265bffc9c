"""explorer.threads: a big batch gets every core only while it is alone, and gives them back."""

from __future__ import annotations

import threading

import pytest
import torch

from explorer import threads


@pytest.fixture
def one_thread(monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    yield
    torch.set_num_threads(before)


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
