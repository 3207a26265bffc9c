"""Plain-words explanations shown beside the views (one or two sentences each)."""

TEXTS = {
    "steps": (
        "The model starts from pure noise and removes a little at every step. Top: the noisy "
        "latent x_t as it is. Middle: the clean image the model *predicts* at that step — early "
        "guesses are blurry averages of many possible images, because so little is known yet. "
        "Bottom: the noise it thinks is in x_t (a flow model: the noise its velocity implies)."
    ),
    "scheduler": (
        "The UNet only predicts noise ε (a flow model's transformer: a velocity v ≈ ε − x0); the "
        "scheduler decides how much of it to take away (a flow model: how far to move along v). "
        "For most schedulers the next latent is a weighted sum of the current one and the "
        "prediction. These pictures are the latent numbers themselves (a cheap colour map, the "
        "same for all four), so you can see how small the removed part is."
    ),
    "guidance": (
        "With guidance the model runs twice per step: once without the prompt (ε_u) and once "
        "with it (ε_c). Their difference is the prompt's push, and the scheduler uses "
        "ε = ε_u + g·(ε_c − ε_u), g = the guidance scale (a flow model mixes its velocities the "
        "same way: v = v_u + g·(v_c − v_u)). Each picture is contrast-stretched on "
        "its own: compare sizes with the norms."
    ),
    "latent": (
        "Stable Diffusion does not denoise pixels: a VAE compresses the image into a small "
        "latent of a few channels, and decodes it back at the end. Left: the latent's channels "
        "as grey images; right: the same latent decoded to pixels."
    ),
    "charts": (
        "ᾱ_t is the share of signal in x_t (a flow model: 1 − σ_t, its place on the line from "
        "the noise to x0); the signal-to-noise ratio rises from near 0 to "
        "large. The coarse layout and colours settle in the first steps, fine detail last: "
        "that is why very few steps still give the right overall picture."
    ),
    "tokens": (
        "The tokenizer cuts the prompt into known pieces and pads it to a fixed length; the "
        "text encoder turns each piece into a vector, and the UNet reads all of them."
    ),
    "tensors": (
        "A tensor is an array of numbers with a shape: 26 × 4 × 16 × 16 is 26 latents, each 4 "
        "channels of 16 × 16 numbers. Here is every tensor the explorer captured from this run. "
        "With guidance the UNet works on a "
        "batch of 2 (without and with the prompt): that doubled batch dimension is split "
        "into noise_uncond and noise_text here (a flow model's: velocity_uncond and velocity_text)."
    ),
}
