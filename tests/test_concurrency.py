"""The engine on one shared pipeline under concurrent runs: each run equals its serial twin."""

from __future__ import annotations

import contextlib
import threading
import time
import types

import numpy as np
import torch

from explorer.engine.batch import run_batch
from explorer.engine.capture import trace
from explorer.engine.models import run_copy
from explorer.engine.tracefile import TENSOR_FIELDS, Trace

# Different prompts (and so token counts), schedulers with history (PNDM, DPM-Solver++),
# stochastic ones (Euler-a, DDPM), guidance on and off.
SETTINGS = [
    dict(prompt="a red circle", scheduler="ddim", guidance=7.5, seed=1),
    dict(
        prompt="a big blue square on the green background", scheduler="pndm", guidance=3.0, seed=2
    ),
    dict(prompt="", scheduler="euler_a", guidance=1.0, seed=3),
    dict(prompt="the small yellow triangle", scheduler="dpmpp_2m", guidance=7.5, seed=4),
    dict(prompt="green " * 100, scheduler="ddpm", guidance=5.0, seed=2**63),
    dict(prompt="a circle", scheduler="euler", guidance=7.5, seed=5),
]
STEPS = 4


def _same(a, b) -> None:
    for name in TENSOR_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert torch.equal(x, y), name
    assert a.prompt_tokens == b.prompt_tokens
    assert a.image.tobytes() == b.image.tobytes()


def _in_threads(jobs: list) -> list:
    """Run every job at once (released together by a barrier); results in order, errors raised."""
    results, errors = [None] * len(jobs), []
    barrier = threading.Barrier(len(jobs))

    def work(i, job):
        barrier.wait()
        try:
            results[i] = job()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_traces_equal_serial_ones(tiny_pipe):
    jobs = [lambda s=s: trace(tiny_pipe, steps=STEPS, **s) for s in SETTINGS]
    serial = [job() for job in jobs]
    for _ in range(2):
        for a, b in zip(_in_threads(jobs), serial):
            _same(a, b)


def test_batched_and_single_runs_together(tiny_pipe):
    own = run_copy(tiny_pipe)
    pe, ne = own.encode_prompt("a red circle", "cpu", 1, True, "")  # (1, L, D) each

    def batch():
        return run_batch(
            tiny_pipe,
            pe.repeat(3, 1, 1),
            ne.repeat(3, 1, 1),
            [7, 8, 9],
            steps=STEPS,
            guidance=7.5,
            scheduler="dpmpp_2m",
        )

    jobs = [batch] + [lambda s=s: trace(tiny_pipe, steps=STEPS, **s) for s in SETTINGS[:3]]
    serial = [job() for job in jobs]
    together = _in_threads(jobs)
    for a, b in zip(together[0], serial[0]):
        _same(a, b)
    for a, b in zip(together[1:], serial[1:]):
        _same(a, b)


def test_run_copy_shares_weights_only(tiny_pipe):
    a, b = run_copy(tiny_pipe, "pndm"), run_copy(tiny_pipe)
    assert a.unet is tiny_pipe.unet and a.vae is tiny_pipe.vae
    assert a.text_encoder is tiny_pipe.text_encoder
    assert a.scheduler is not b.scheduler is not tiny_pipe.scheduler
    assert a.tokenizer is not b.tokenizer is not tiny_pipe.tokenizer
    assert type(b.scheduler) is type(tiny_pipe.scheduler)
    assert a.name_or_path == tiny_pipe.name_or_path
    assert not tiny_pipe.unet._forward_hooks  # no run leaves a hook behind


# ---- the shared tokenizer: the CLIP tab and the CLIP studies beside runs -----------------------
# `models.private_tokenizer` documents the race: a fast tokenizer sets its backend's padding and
# truncation on every call, so a thread that calls a pipeline's shared tokenizer can encode with
# another thread's settings (wrong lengths). Nothing outside a run copy may call `pipe.tokenizer`.

RACE_PROMPTS = ["a red circle", "the big blue square on a green background"]  # two lengths


@contextlib.contextmanager
def hammered(*tokenizers):
    """Each of `tokenizers` (a pipeline's shared one) at the worst of that race, on every call.

    A hammer thread calls it without padding all the time (each such call switches the backend's
    padding and truncation off), and every other thread's call of it waits 1 ms between setting
    its padding and encoding: the thread switch that lands there by chance about once in 200
    calls lands there on every call. A copy of the tokenizer (`private_tokenizer`) never waits,
    and no hammer touches it.
    """
    tokenizers = list({id(t): t for t in tokenizers}.values())  # each once
    stop = threading.Event()

    def hammer(tok):
        while not stop.is_set():
            with contextlib.suppress(Exception):  # the race hits the hammer's own calls too
                tok("red")
            time.sleep(0.0002)

    def widened(self, *args, **kwargs):
        type(self).set_truncation_and_padding(self, *args, **kwargs)
        if any(self is t for t in tokenizers) and threading.current_thread().name != "hammer":
            time.sleep(0.001)

    for tok in tokenizers:  # bound per instance: a deepcopy rebinds it to the copy
        tok.set_truncation_and_padding = types.MethodType(widened, tok)
    workers = [threading.Thread(target=hammer, args=(t,), name="hammer") for t in tokenizers]
    for w in workers:
        w.start()
    try:
        yield
    finally:
        stop.set()
        for w, tok in zip(workers, tokenizers):
            w.join()
            del tok.set_truncation_and_padding


def test_clip_tab_and_studies_never_share_the_pipeline_tokenizer(tiny_pipe, mini_pipe):
    from conftest import tab_client

    from explorer.studies import clip_scores

    tiny, mini = run_copy(tiny_pipe), run_copy(mini_pipe)  # the "shared" pipelines of this test
    lines = "\n".join(RACE_PROMPTS)
    with tab_client(mini, ["explorer.ui.tabs.clip"]) as client:
        clip = clip_scores.find_clip(mini)
        jobs = [
            lambda: client.predict(*RACE_PROMPTS, api_name="/tokens")[0],
            lambda: client.predict(lines, api_name="/norms")[0],
            lambda: client.predict(lines, api_name="/similarity")[0],
            lambda: clip_scores.text_features(clip, RACE_PROMPTS),
            lambda: clip_scores.prompt_vectors(tiny, None, RACE_PROMPTS)[0],
            lambda: [i.tobytes() for i in clip_scores.generate_images(tiny, RACE_PROMPTS, steps=2)],
            lambda: trace(tiny, steps=2, **SETTINGS[1]),
        ]
        serial = [job() for job in jobs]
        with hammered(tiny.tokenizer, mini.tokenizer, clip.tokenizer):  # a Clip serves all
            for _ in range(3):
                for got, want in zip(_in_threads(jobs), serial):
                    if isinstance(want, np.ndarray):
                        assert np.array_equal(got, want)
                    elif isinstance(want, Trace):
                        _same(got, want)
                    else:
                        assert got == want
