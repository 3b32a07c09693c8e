"""Autoregressive models with exact likelihoods on discrete levels and cached sampling
inside the exported `sample` signature: Gated PixelCNN (images) and WaveNet (audio)."""

from tfgen.models.autoregressive.pixel_cnn import GatedPixelCNN

__all__ = ["GatedPixelCNN"]
