"""Autoregressive models with exact likelihoods on discrete levels and cached sampling
inside the exported `sample` signature: Gated PixelCNN (images) and WaveNet (audio)."""

from tfgen.models.autoregressive.pixel_cnn import GatedPixelCNN
from tfgen.models.autoregressive.wavenet import WaveNet

__all__ = ["GatedPixelCNN", "WaveNet"]
