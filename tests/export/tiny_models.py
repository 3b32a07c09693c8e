"""A real flow small enough to export in a second: diagonal affine z -> x.

The export tests run on it until, and besides, the flow zoo (tests/zoo.py).
"""

from tfgen.backend import keras, tf, tfb
from tfgen.models.flows.base import FlowModel


class DiagonalFlow(FlowModel):
    """x = shift(condition) + exp(log_scale) * z, elementwise.

    Args:
      data_spec: a `DataSpec` (or dict).
      **kwargs: `FlowModel` arguments.
    """

    def __init__(self, data_spec, **kwargs):
        super().__init__(data_spec, **kwargs)
        shape = self.data_spec.event_shape
        self.shift = self.add_weight(name="shift", shape=shape, initializer="random_normal")
        self.log_scale = self.add_weight(name="log_scale", shape=shape, initializer="zeros")
        if self.data_spec.conditional:
            self.condition_shift = keras.layers.Dense(self.data_spec.num_dims, name="condition_shift")

    def _flow_bijector(self, condition_features):
        shift = self.shift
        if condition_features is not None:
            shape = [-1, *self.data_spec.event_shape]
            shift = shift + tf.reshape(self.condition_shift(condition_features), shape)
        return tfb.Chain([tfb.Shift(shift), tfb.Scale(tf.exp(self.log_scale))])


def vector_flow():
    """Unconditional, continuous 2-D data (the toy densities)."""
    return DiagonalFlow({"event_shape": [2], "kind": "vector", "low": -4.0, "high": 4.0})


def image_flow():
    """Conditional, 4x4x1 images with 17 grey levels (like digits)."""
    return DiagonalFlow({"event_shape": [4, 4, 1], "kind": "image", "levels": 17, "num_classes": 3})
