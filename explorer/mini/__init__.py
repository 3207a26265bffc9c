"""The embedded Mini Stable Diffusion models: procedural data, training, evaluation, judges,
shipped weights. Imports only what it needs from the engine."""
