"""Every captured array of a run, with its shape, size and one plain sentence (question 1).

An epsilon trace's sentences speak of the UNet and its noise ε; a flow trace's (SD3, rectified
flow: `explorer.engine.flow`) of the transformer, its velocity v ≈ ε − x_0 and σ_t, and of ε and
ᾱ as what they are there: derived from v and σ. SDXL and SD3 traces also hold a pooled text
vector, and SDXL's its added time ids.
"""

from __future__ import annotations

from explorer.engine.tracefile import TENSOR_FIELDS, Trace


def _epsilon_sentences(trace: Trace) -> dict[str, str]:
    """The sentences of an epsilon model's (SD 1.x/2.x, SDXL) tensors."""
    T = trace.num_steps
    C, h, w = trace.latents.shape[1:]
    grid = f"{C} channels of a {h}×{w} grid"
    L, D = trace.prompt_embeds.shape
    batch = (
        "The UNet ran on a batch of 2 (unconditional + text) because guidance is on; "
        if trace.guided
        else "Guidance is off, so the UNet ran on a batch of 1; "
    )
    return {
        "timesteps": f"The scheduler's timestep t for each of the {T} steps (1000 = pure noise).",
        "alphas_cumprod": "ᾱ_t per step: the share of signal (not noise) power in x_t.",
        "sigmas": "σ_t per step: the noise level of sigma-space schedulers (x_t = x_0 + σ·ε).",
        "latents": f"The noisy latent x_t before the first step and after each step: {grid}.",
        "model_input": (
            f"What the UNet saw at each step (x_t after scaling); {batch}this keeps one copy."
        ),
        "noise_pred": f"The noise ε each step used (after guidance): {grid}.",
        "noise_uncond": "The UNet's noise without the prompt (first half of the doubled batch).",
        "noise_text": "The UNet's noise with the prompt (second half of the doubled batch).",
        "x0_pred": f"The clean latent x_0 each step predicts, the image it is heading to: {grid}.",
        "step_coeffs": "Per step (a, b) with x_{t-1} ≈ a·x_t + b·ε: how the scheduler mixes.",
        "prompt_embeds": (
            f"The text encoder's output: {L} token vectors of {D} numbers, the UNet's condition."
        ),
        "negative_embeds": (
            f"The same {L}×{D} vectors for the negative (or empty) prompt, used by ε_u."
        ),
        "preview_factors": f"A {C}×3 matrix mapping latent channels to RGB for cheap previews.",
        "preview_bias": "The RGB offset of the cheap preview.",
        "init_latents": "The clean latent of the img2img start image.",
    }


def _flow_sentences(trace: Trace) -> dict[str, str]:
    """What differs for a flow model (SD3): the transformer, v, σ_t, and ε and ᾱ derived."""
    T = trace.num_steps
    C, h, w = trace.latents.shape[1:]
    grid = f"{C} channels of a {h}×{w} grid"
    L, D = trace.prompt_embeds.shape
    shift = trace.settings.get("shift")
    shifted = f", shifted by {shift:g}" if isinstance(shift, int | float) else ""
    batch = (
        "it ran on a batch of 2 (unconditional + text) because guidance is on; "
        if trace.guided
        else "guidance is off, so it ran on a batch of 1; "
    )
    return {
        "timesteps": f"The timestep t = 1000·σ_t the transformer was told at each of {T} steps.",
        "alphas_cumprod": (
            "Not the model's own term: the ᾱ with the same signal-to-noise ratio as σ_t, "
            "(1 − σ)² / ((1 − σ)² + σ²), so SNR views read epsilon and flow alike (0 at σ = 1)."
        ),
        "sigmas": (
            "σ_t per step: where x_t lies on the straight line x_t = σ·ε + (1 − σ)·x_0 "
            f"(1 = pure noise, 0 = the picture){shifted}."
        ),
        "model_input": (
            f"What the transformer saw at each step: x_t as it is (no scaling); {batch}"
            "this keeps one copy."
        ),
        "velocity": (
            "The velocity v ≈ ε − x_0 the transformer predicted at each step (after guidance): "
            f"the direction from the picture to the noise, {grid}."
        ),
        "velocity_uncond": "The transformer's velocity v_u without the prompt (first half).",
        "velocity_text": "The transformer's velocity v_c with the prompt (second half).",
        "noise_pred": f"The noise ε = x_t + (1 − σ)·v that each step's v implies: {grid}.",
        "noise_uncond": "The noise x_t + (1 − σ)·v_u that the unconditional velocity implies.",
        "noise_text": "The noise x_t + (1 − σ)·v_c that the text-conditioned velocity implies.",
        "x0_pred": f"The clean latent x_0 = x_t − σ·v each step heads to: {grid}.",
        "step_coeffs": (
            "Per step (a, b) with x_next = a·x_t + b·ε: the Euler step written with the implied "
            "ε; the model's own form is x_next = x_t + (σ_next − σ_t)·v."
        ),
        "prompt_embeds": (
            f"The text encoders' output in one sequence: {L} token vectors of {D} numbers, "
            "the transformer's condition."
        ),
        "negative_embeds": (
            f"The same {L}×{D} vectors for the negative (or empty) prompt, used by v_u."
        ),
    }


def _conditioning_sentences(trace: Trace) -> dict[str, str]:
    """The pooled vector (SDXL, SD3), SDXL's time ids, and two towers' states side by side."""
    out = {}
    widths = trace.settings.get("text_encoder_widths")
    L, D = trace.prompt_embeds.shape
    if trace.settings.get("pipeline_kind") == "sdxl" and widths:
        out["prompt_embeds"] = (
            f"Both text encoders' states side by side: {L} token vectors of {D} = "
            f"{' + '.join(str(w) for w in widths)} numbers, the UNet's condition."
        )
    if trace.pooled_embeds is not None:
        P = trace.pooled_embeds.shape[-1]
        out["pooled_embeds"] = (
            f"One pooled vector of {P} numbers for the whole prompt (the projected end-token "
            "state of the CLIP tower(s)): a second condition, beside the token vectors."
        )
        out["negative_pooled_embeds"] = (
            f"The same pooled {P} numbers for the negative (or empty) prompt."
        )
    if trace.time_ids is not None:
        ids = ", ".join(f"{float(v):g}" for v in trace.time_ids.flatten())
        out["time_ids"] = (
            f"SDXL's added time ids ({ids}): original size, crop corner and target size, told "
            "to the UNet as numbers beside the text."
        )
    return out


def _sentences(trace: Trace) -> dict[str, str]:
    """Every field's sentence for this trace: epsilon's, overridden by its kind's own."""
    words = _epsilon_sentences(trace)
    if trace.objective == "flow":
        words |= _flow_sentences(trace)
    return words | _conditioning_sentences(trace)


def tensor_inventory(trace: Trace) -> list[dict]:
    """Every captured array: name, shape, dtype, bytes and one plain sentence."""
    words = _sentences(trace)
    rows = []
    for name in TENSOR_FIELDS:
        t = getattr(trace, name)
        if t is None:
            continue
        rows.append(
            {
                "name": name,
                "shape": " × ".join(str(s) for s in t.shape),
                "dtype": str(t.dtype).replace("torch.", ""),
                "bytes": t.numel() * t.element_size(),
                "what it holds": words.get(name, ""),
            }
        )
    return rows
