"""A traced UNet for plain inference calls on the CPU: the same numbers, less Python per call.

A small UNet on a CPU spends about a quarter of each call in Python (diffusers' modules, hooks,
argument checks) rather than arithmetic; the Mini's 25-step guided generation makes 25 such calls.
`install(unet)` replaces `unet.forward` with a dispatcher that runs a `torch.jit.trace` of the
same module for the calls a pipeline makes (no gradients, eval mode, only sample, timestep and
text states) and the eager forward for everything else. The trace records the very aten calls the
eager forward makes and shares its parameters, so its outputs are bitwise the eager ones
(tests/test_fastpath.py checks this). Hooks on the UNet itself still run (they sit outside
`forward`); a hook on any inner module, a swapped attention processor or any extra argument sends
the call to the eager forward. Attention capture's taps (`explorer.engine.attention_taps`) are the
one swap it follows: for a thread that captures maps it uses a trace whose outputs include each
layer's map (the taps' own computation, recorded) and hands them to the capture's collector.
Traces are made on first use, one per input signature (shapes, dtypes, maps or not), and kept for
the last few.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections import OrderedDict
from typing import Any

import torch

from explorer.engine import attention_taps as attention

KEEP = 6  # traced signatures kept per UNet
_EXTRA_KWARGS = (  # UNet2DConditionModel.forward's optional inputs: all must be None
    "class_labels",
    "timestep_cond",
    "attention_mask",
    "cross_attention_kwargs",
    "added_cond_kwargs",
    "down_block_additional_residuals",
    "mid_block_additional_residual",
    "down_intrablock_additional_residuals",
    "encoder_attention_mask",
)


class _Call(torch.nn.Module):
    """What gets traced: the UNet's eager forward on (sample, timestep, text states)."""

    def __init__(self, unet: torch.nn.Module, eager, maps_for: bool | None) -> None:
        super().__init__()
        self.unet = unet  # registered, so the trace holds the parameters, not copies
        self.eager = eager
        self.maps_for = maps_for  # None: plain; else attention maps too, guided or not

    def forward(self, sample, timestep, states):
        if self.maps_for is None:
            return self.eager(sample, timestep, states, return_dict=False)[0]
        with attention.maps_as_outputs(self.maps_for) as maps:
            out = self.eager(sample, timestep, states, return_dict=False)[0]
        return (out, *maps)  # (B, C, h, w), then per cross-attention layer (L, N)


class FastForward:
    """`unet.forward`'s replacement: the trace where it is valid, the eager forward otherwise."""

    def __init__(self, unet: torch.nn.Module) -> None:
        self.unet = unet
        self.eager = unet.forward  # the bound UNet2DConditionModel.forward
        self.inner = list(unet.modules())[1:]  # (hooks on the UNet itself run outside forward)
        self.processors = [(m, m.processor) for m in self.inner if hasattr(m, "set_processor")]
        self.traces: OrderedDict[tuple, Any] = OrderedDict()
        self.failed: set[tuple] = set()
        self.lock = threading.Lock()
        functools.update_wrapper(self, self.eager)  # the eager forward's name, doc and signature

    def _plain(self, sample, timestep, states, kwargs) -> bool:
        """Whether this call is one the trace computes exactly as the eager forward would."""
        nn_module = torch.nn.modules.module
        return (
            sample.device.type == "cpu"
            and not torch.is_grad_enabled()
            and not self.unet.training
            and isinstance(timestep, torch.Tensor)
            and timestep.dim() <= 1
            and isinstance(states, torch.Tensor)
            and all(kwargs.get(k) is None for k in _EXTRA_KWARGS)
            and set(kwargs) <= {*_EXTRA_KWARGS, "return_dict"}
            and not (nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks)
            and not any(m._forward_hooks or m._forward_pre_hooks for m in self.inner)
        )

    def _mode(self) -> str | None:
        """Which trace serves this call: "plain" (the original processors, or attention taps with
        no capture in this context), "maps" (taps, and a capture here) or None (eager: some
        processor was swapped for something else)."""
        taps = False
        for module, original in self.processors:
            if module.processor is not original:
                if attention.tapped(module.processor) is not original:
                    return None
                taps = True
        return "maps" if taps and attention.collector() is not None else "plain"

    def _trace(self, key: tuple, sample, timestep, states, maps_for: bool | None):
        with self.lock:
            if key in self.traces:
                self.traces.move_to_end(key)
                return self.traces[key]
            if key in self.failed:
                return None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)
                    warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 on trace
                    traced = torch.jit.trace(
                        _Call(self.unet, self.eager, maps_for),
                        (sample, timestep, states),
                        check_trace=False,
                    )
            except Exception:  # a UNet the tracer cannot follow: stay eager for this signature
                self.failed.add(key)
                return None
            self.traces[key] = traced
            while len(self.traces) > KEEP:
                self.traces.popitem(last=False)
            return traced

    def __call__(self, sample, timestep, encoder_hidden_states=None, *args, **kwargs):
        plain = not args and self._plain(sample, timestep, encoder_hidden_states, kwargs)
        mode = self._mode() if plain else None
        if mode is None:
            return self.eager(sample, timestep, encoder_hidden_states, *args, **kwargs)
        collector = attention.collector() if mode == "maps" else None
        maps_for = collector.guided if collector else None
        params = next(self.unet.parameters())
        key = tuple(
            (tuple(x.shape), x.dtype) for x in (sample, timestep, encoder_hidden_states)
        ) + (params.data_ptr(), params.dtype, maps_for)  # cast weights, maps: a new trace
        traced = self._trace(key, sample, timestep, encoder_hidden_states, maps_for)
        if traced is None:
            return self.eager(sample, timestep, encoder_hidden_states, **kwargs)
        out = traced(sample, timestep, encoder_hidden_states)  # (B, C, h, w)
        if collector is not None:  # the maps the taps would have given the collector, in order
            out, *maps = out
            for layer in maps:
                collector.add_map(layer)
        if kwargs.get("return_dict", True):
            from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

            return UNet2DConditionOutput(sample=out)
        return (out,)


def install(unet: torch.nn.Module) -> torch.nn.Module:
    """Give ``unet`` the traced fast path for plain CPU calls (idempotent); returns ``unet``."""
    if not isinstance(unet.__dict__.get("forward"), FastForward):
        unet.forward = FastForward(unet)
    return unet
