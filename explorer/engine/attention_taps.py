"""Capture the UNet's cross-attention maps during a run: for every step, latent position and token,
how much that position attends to that token (DAAM, Tang et al. 2022).

The UNet is shared with other runs (other threads, and plain `pipe(...)` calls), so nothing here
edits the library or swaps processors per run. Each cross-attention layer (`attn2`) gets a
`_Tap` processor that wraps the processor it had and always returns exactly what that processor
returns -- the image is unchanged, whatever the original processor is. The taps stay installed
while at least one capture runs on that UNet (a reference count under a lock) and the original
processors come back when the last one ends, also on error. A tap records only for the thread
whose context holds a `_Collector` (a context variable, as in `explorer.engine.capture`); other
calls pass straight through.

Per layer and step the tap recomputes the attention probabilities of the text-conditioned half
of the batch the way `AttnProcessor` does (`attn.get_attention_scores`), averages the heads,
upsamples the (h_l, w_l) map bilinearly to the latent grid (h, w) and adds it to the step's sum:
memory stays L × T × h × w, never per head or per layer.

SD3's transformer has no cross-attention: each block's `attn` is joint, image and text tokens in
one softmax (`JointAttnProcessor2_0`). Its tap takes the image queries' row of that softmax at
the text keys, head by head: how much of a position's attention goes to each token (the rest goes
to image tokens, so there the L maps of a position sum to less than 1).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

_CURRENT: contextvars.ContextVar[_Collector | None] = contextvars.ContextVar(
    "explorer_attention_collector", default=None
)
_SINK: contextvars.ContextVar[_Sink | None] = contextvars.ContextVar(
    "explorer_attention_sink", default=None
)
_LOCK = threading.Lock()
_USERS: dict[int, int] = {}  # id(unet) -> number of captures running on it


class _Sink:
    """Where taps put their `layer_map`s while `explorer.engine.fastpath` traces a UNet call."""

    def __init__(self, guided: bool) -> None:
        self.guided = guided
        self.maps: list[torch.Tensor] = []  # per cross-attention layer, in call order: (L, N)


def collector() -> _Collector | None:
    """The collector this context's captures feed, if a capture runs here."""
    return _CURRENT.get()


def tapped(processor: Any) -> Any | None:
    """The processor a tap wraps, or None if `processor` is not a tap."""
    return processor.original if isinstance(processor, _Tap) else None


@contextlib.contextmanager
def maps_as_outputs(guided: bool) -> Iterator[list[torch.Tensor]]:
    """Within the block, taps append each layer's map to the yielded list instead of handing it to
    a collector (how `explorer.engine.fastpath` makes a trace whose outputs include the maps)."""
    sink = _Sink(guided)
    token = _SINK.set(sink)
    try:
        yield sink.maps
    finally:
        _SINK.reset(token)


def cross_attention_layers(unet: torch.nn.Module) -> dict[str, Any]:
    """The modules attending to the text, by name: a UNet's cross-attention (`...attn2`), or an
    SD3 transformer's joint attention (`...attn`, with projections for the text tokens)."""
    return {
        name: m
        for name, m in unet.named_modules()
        if (name.endswith("attn2") and getattr(m, "is_cross_attention", False)) or _joint(m, name)
    }


def _joint(module: Any, name: str) -> bool:
    """An SD3 joint-attention module: `...attn` with key projections for the text tokens."""
    return name.endswith(".attn") and getattr(module, "add_k_proj", None) is not None


class _Collector:
    """One run's maps: the sum over layers of each step's head-averaged probabilities."""

    def __init__(self, guided: bool, n_layers: int) -> None:
        self.guided, self.n_layers = guided, n_layers
        self.grid: tuple[int, int] | None = None  # (h, w) of the latent
        self.steps: list[torch.Tensor | None] = []  # per step: (L, h, w), None before a layer

    def begin_step(self, sample: torch.Tensor) -> None:
        """A UNet call starts (one per step): open a new sum on its latent grid."""
        self.grid = tuple(sample.shape[-2:])
        self.steps.append(None)

    def add(self, attn: Any, hidden_states: torch.Tensor, context: torch.Tensor) -> None:
        """Add one layer's map of the text-conditioned half of the batch to the current step."""
        if self.steps and self.grid is not None:
            self.add_map(layer_map(attn, hidden_states, context, self.guided))

    def add_map(self, maps: torch.Tensor) -> None:
        """Add one layer's `layer_map` (L, N) to the current step, on the latent grid."""
        if not self.steps or self.grid is None:
            return
        h, w = self.grid
        hl, wl = _layer_grid(maps.shape[1], h, w)
        maps = maps.float().reshape(1, -1, hl, wl)  # (1, L, h_l, w_l)
        if (hl, wl) != (h, w):
            maps = F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False)
        maps = maps[0].detach().to("cpu", torch.float32)  # (L, h, w)
        self.steps[-1] = maps if self.steps[-1] is None else self.steps[-1] + maps

    def maps(self, steps: int | None = None) -> torch.Tensor:
        """(L, T, h, w): each step's maps averaged over the layers (so, at every position, the
        maps of all L tokens sum to 1), for the first `steps` steps (all by default)."""
        done = [m for m in self.steps[:steps] if m is not None]
        return torch.stack(done, dim=1) / self.n_layers  # (L, T, h, w)


def layer_map(attn: Any, hidden_states: torch.Tensor, context: torch.Tensor, guided: bool):
    """One layer's head-averaged probabilities for the text-conditioned half of the batch: (L, N).

    `guided`: the batch is [uncond, text] (classifier-free guidance); only the text half counts."""
    if guided:
        hidden_states, context = hidden_states.chunk(2)[1], context.chunk(2)[1]
    if getattr(attn, "add_k_proj", None) is not None:
        return _joint_text_share(attn, hidden_states, context)  # (L, N)
    probs = _probabilities(attn, hidden_states, context)  # (B, heads, N, L)
    return probs.mean(dim=(0, 1)).T  # (L, N)


def _joint_text_share(attn: Any, hidden_states: torch.Tensor, context: torch.Tensor):
    """Joint attention's image-query rows at the text keys, as `JointAttnProcessor2_0` computes
    the softmax over [image keys, text keys], averaged over batch and heads: (L, N)."""
    b, n = hidden_states.shape[:2]

    def heads(x: torch.Tensor) -> torch.Tensor:  # (B, n, H·d) -> (B, H, n, d)
        return x.view(b, -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)

    query, key = heads(attn.to_q(hidden_states)), heads(attn.to_k(hidden_states))
    text_key = heads(attn.add_k_proj(context))  # (B, H, L, d)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    if attn.norm_added_k is not None:
        text_key = attn.norm_added_k(text_key)
    keys = torch.cat([key, text_key], dim=2)  # (B, H, N + L, d)
    total = 0
    for h in range(attn.heads):  # one head at a time: memory N × (N + L), not H times that
        logits = query[:, h] @ keys[:, h].transpose(-1, -2) * query.shape[-1] ** -0.5
        total = total + logits.softmax(-1)[..., n:].mean(0)  # (N, L)
    return (total / attn.heads).T  # (L, N)


def _probabilities(attn: Any, hidden_states: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ · scale) exactly as diffusers' `AttnProcessor` computes it: (B, heads, N, L)."""
    if attn.spatial_norm is not None or hidden_states.ndim == 4:
        raise NotImplementedError("attention maps need (B, N, C) token inputs, as SD's attn2 has")
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    if attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    query = attn.head_to_batch_dim(attn.to_q(hidden_states))  # (B·heads, N, d)
    key = attn.head_to_batch_dim(attn.to_k(context))  # (B·heads, L, d)
    if attn.norm_q is not None or attn.norm_k is not None:
        raise NotImplementedError("attention maps do not support q/k normalisation")
    probs = attn.get_attention_scores(query, key)  # (B·heads, N, L)
    return probs.reshape(-1, attn.heads, *probs.shape[1:])  # (B, heads, N, L)


def _layer_grid(n: int, h: int, w: int) -> tuple[int, int]:
    """The (h_l, w_l) of a layer with n positions on a latent of h × w (halved, rounding up)."""
    hl, wl = h, w
    while hl * wl > n:
        hl, wl = -(-hl // 2), -(-wl // 2)
    if hl * wl != n:
        raise ValueError(f"cannot place {n} attention positions on a {h}×{w} latent")
    return hl, wl


class _Tap:
    """A cross-attention processor: the original's output, plus the map for the current run.

    Its signature is `AttnProcessor2_0`'s, so `Attention.forward` passes it the same arguments."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        collector = _CURRENT.get()
        sink = _SINK.get()
        if sink is not None and encoder_hidden_states is not None:  # being traced: maps as outputs
            sink.maps.append(layer_map(attn, hidden_states, encoder_hidden_states, sink.guided))
        elif collector is not None and encoder_hidden_states is not None:
            with torch.no_grad():
                collector.add(attn, hidden_states, encoder_hidden_states)
        if temb is not None:
            kwargs["temb"] = temb
        return self.original(  # called as `Attention.forward` calls a processor
            attn,
            hidden_states,
            *args,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
            **kwargs,
        )


def _install(unet: torch.nn.Module) -> None:
    """Put a tap on every cross-attention layer (the first capture on this UNet does it)."""
    with _LOCK:
        users = _USERS.get(id(unet), 0)
        if users == 0:
            for layer in cross_attention_layers(unet).values():
                if not isinstance(layer.processor, _Tap):
                    layer.set_processor(_Tap(layer.processor))
        _USERS[id(unet)] = users + 1


def _uninstall(unet: torch.nn.Module) -> None:
    """Give the layers their original processors back (the last capture on this UNet does it)."""
    with _LOCK:
        users = _USERS.pop(id(unet)) - 1
        if users > 0:
            _USERS[id(unet)] = users
            return
        for layer in cross_attention_layers(unet).values():
            if isinstance(layer.processor, _Tap):
                layer.set_processor(layer.processor.original)


def _route(module, args, *rest, owner: _Collector) -> None:
    """The UNet forward pre-hook: a step starts, for `owner` only if this thread captures for it.

    `rest` is (kwargs,), or () during another thread's hook removal (see
    `explorer.engine.capture`)."""
    if _CURRENT.get() is owner and rest:
        sample = args[0] if args else rest[0].get("sample", rest[0].get("hidden_states"))
        if sample is not None:
            owner.begin_step(sample)


@contextlib.contextmanager
def capture_attention(unet: torch.nn.Module, guided: bool) -> Iterator[_Collector]:
    """Within the block, UNet calls made by this thread (context) record cross-attention maps.

    `guided`: the UNet batch is [uncond, text] (classifier-free guidance); only the text half
    counts. Yields the collector; `collector.maps()` is (L, T, h, w). Calls from other threads
    are untouched; the original processors are back after the last capture ends, also on error.
    """
    layers = cross_attention_layers(unet)
    if not layers:
        raise ValueError("this UNet has no cross-attention layers (attn2) to take maps from")
    collector = _Collector(guided, len(layers))
    _install(unet)
    try:
        handle = unet.register_forward_pre_hook(
            functools.partial(_route, owner=collector), with_kwargs=True
        )
        token = _CURRENT.set(collector)
        try:
            yield collector
        finally:
            _CURRENT.reset(token)
            handle.remove()
    finally:
        _uninstall(unet)
