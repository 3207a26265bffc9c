"""The traced fast path (explorer.engine.fastpath): bitwise the eager UNet, and eager where it
must be."""

from __future__ import annotations

import numpy as np
import torch
from diffusers.models.attention_processor import AttnProcessor

from explorer.engine import fastpath
from explorer.engine.capture import trace

PROMPT = "a red circle on a blue background"


def generate(pipe, seed: int = 0) -> np.ndarray:
    gen = torch.Generator("cpu").manual_seed(seed)
    out = pipe(PROMPT, num_inference_steps=4, guidance_scale=5.0, generator=gen, output_type="np")
    return out.images  # (1, 64, 64, 3)


def unet_inputs(pipe, batch: int = 2):
    g = torch.Generator().manual_seed(1)
    sample = torch.randn((batch, 4, 8, 8), generator=g)  # (B, 4, 8, 8)
    states = torch.randn((batch, 77, pipe.unet.config.cross_attention_dim), generator=g)
    return sample, torch.tensor(500), states


def test_pipeline_images_are_bitwise_the_eager_ones(make_tiny_pipe):
    pipe = make_tiny_pipe()
    eager = generate(pipe)
    fastpath.install(pipe.unet)
    fast = generate(pipe)
    forward = pipe.unet.forward
    assert len(forward.traces) == 1  # the pipeline's calls went through one trace
    assert np.array_equal(fast, eager)
    assert fastpath.install(pipe.unet).forward is forward  # installing twice changes nothing


def test_unet_outputs_match_for_every_timestep_and_batch(make_tiny_pipe):
    pipe = make_tiny_pipe()
    fastpath.install(pipe.unet)
    eager = pipe.unet.forward.eager
    with torch.no_grad():
        for batch in (1, 2):
            sample, _, states = unet_inputs(pipe, batch)
            for t in (1, 500, 999):
                want = eager(sample, torch.tensor(t), states).sample
                got = pipe.unet(sample, torch.tensor(t), encoder_hidden_states=states).sample
                assert torch.equal(got, want)
    assert len(pipe.unet.forward.traces) == 2  # one per input signature


def test_calls_the_trace_cannot_stand_for_run_eagerly(make_tiny_pipe):
    pipe = make_tiny_pipe()
    fastpath.install(pipe.unet)
    sample, t, states = unet_inputs(pipe)
    calls = []
    inner = pipe.unet.conv_in

    with torch.no_grad():  # a hook on an inner module must see its calls
        handle = inner.register_forward_hook(lambda *a: calls.append(1))
        pipe.unet(sample, t, encoder_hidden_states=states)
        handle.remove()
    assert calls == [1]
    assert not pipe.unet.forward.traces

    with torch.enable_grad():  # gradients flow (the trace is for inference only)
        out = pipe.unet(sample.requires_grad_(), t, encoder_hidden_states=states).sample
        out.sum().backward()
    assert sample.grad is not None and sample.grad.abs().sum() > 0
    assert not pipe.unet.forward.traces

    layer = next(m for n, m in pipe.unet.named_modules() if n.endswith("attn1"))
    original = layer.processor
    layer.set_processor(AttnProcessor())  # a processor swapped for another
    with torch.no_grad():
        want = pipe.unet.forward.eager(sample, t, states).sample
        got = pipe.unet(sample, t, encoder_hidden_states=states).sample
    layer.set_processor(original)
    assert torch.equal(got, want)
    assert not pipe.unet.forward.traces


def test_attention_capture_gets_bitwise_the_eager_maps(make_tiny_pipe):
    pipe = make_tiny_pipe()
    eager = trace(pipe, PROMPT, steps=4, guidance=5.0, seed=0, attention=True)
    fastpath.install(pipe.unet)
    fast = trace(pipe, PROMPT, steps=4, guidance=5.0, seed=0, attention=True)
    plain = trace(pipe, PROMPT, steps=4, guidance=5.0, seed=0)
    modes = sorted(str(key[-1]) for key in pipe.unet.forward.traces)
    assert modes == ["None", "True"]  # a trace with the maps as outputs, and the plain one
    assert torch.equal(fast.attention, eager.attention) and fast.attention.abs().sum() > 0
    assert np.array_equal(np.asarray(fast.image), np.asarray(eager.image))
    assert np.array_equal(np.asarray(plain.image), np.asarray(eager.image))


def test_a_unet_the_tracer_cannot_follow_stays_eager(make_tiny_pipe, monkeypatch):
    pipe = make_tiny_pipe()
    eager = generate(pipe)
    fastpath.install(pipe.unet)

    def refuse(*args, **kwargs):
        raise RuntimeError("not traceable")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    assert np.array_equal(generate(pipe), eager)
    assert len(pipe.unet.forward.failed) == 1 and not pipe.unet.forward.traces


def test_cast_weights_get_a_trace_of_their_own(make_tiny_pipe):
    pipe = make_tiny_pipe()
    fastpath.install(pipe.unet)
    sample, t, states = unet_inputs(pipe)
    with torch.no_grad():
        pipe.unet(sample, t, encoder_hidden_states=states)
        pipe.unet.to(torch.float64)
        got = pipe.unet(sample.double(), t, encoder_hidden_states=states.double()).sample
        want = pipe.unet.forward.eager(sample.double(), t, states.double()).sample
    assert got.dtype == torch.float64 and torch.equal(got, want)
    assert len(pipe.unet.forward.traces) == 2


def test_the_mini_pipeline_loads_with_the_fast_path(mini_pipe):
    assert isinstance(mini_pipe.unet.__dict__.get("forward"), fastpath.FastForward)


def test_the_app_warm_up_makes_the_traces_a_first_visitor_needs():
    import types

    import app
    from explorer.engine.models import MINI_DIR, _load

    pipe = _load.__wrapped__(str(MINI_DIR), "cpu")  # a fresh Mini pipeline, no traces yet
    assert not pipe.unet.forward.traces
    app.warm_up(types.SimpleNamespace(pipe=lambda: pipe))
    made = {(key[0][0], key[-1]) for key in pipe.unet.forward.traces}
    assert made == {((2, 4, 16, 16), None), ((2, 4, 16, 16), True)}  # plain, and with maps
