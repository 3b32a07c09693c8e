"""Flows small enough to export in a second, for the export tests: the diagonal affine
flow of tests/toy_models.py (x = shift + exp(log_scale) * z) on a few data layouts.

The export tests run on them until, and besides, the flow zoo (tests/zoo.py).
"""

from toy_models import DiagonalAffineFlow


def _flow(data_spec):
    # A random shift, so the samples of different rows and classes differ in every dim.
    return DiagonalAffineFlow(data_spec, init_shift_stddev=0.5)


def vector_flow(dims=2):
    """Unconditional, continuous vectors (2-D: the toy densities)."""
    return _flow({"event_shape": [dims], "kind": "vector", "low": -4.0, "high": 4.0})


def image_flow():
    """Conditional, 4x4x1 images with 17 grey levels (like digits)."""
    return _flow({"event_shape": [4, 4, 1], "kind": "image", "levels": 17, "num_classes": 3})


def audio_flow(samples=64, sample_rate=8000):
    """Unconditional, continuous mono audio clips `[T, 1]`."""
    return _flow({"event_shape": [samples, 1], "kind": "audio", "sample_rate": sample_rate})
