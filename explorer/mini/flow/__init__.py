"""mini-flow: the Mini model's world, VAE and text encoder with a rectified-flow denoiser."""
