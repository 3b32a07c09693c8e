"""Gated activation units and residual/skip connections (van den Oord et al. 2016).

    z = tanh(W_f * x) . sigmoid(W_g * x)

on features whose last axis holds the filter half then the gate half. `ResidualSkip`
maps `z` back to the residual stream (`x + W_r z`) and, optionally, to the skip path
(`W_s z`), with 1x1 projections (`Dense` on the last axis, so the same weights serve a
whole image or sequence and a single pixel or time step).
"""

from tfgen.backend import keras, tf
from tfgen.serialization import attribute_config


def gated_activation(features):
    """tanh(first half) * sigmoid(second half) of the last axis."""
    filters, gates = tf.split(features, 2, axis=-1)
    return tf.tanh(filters) * tf.sigmoid(gates)


class ResidualSkip(keras.layers.Layer):
    """`(x, z) -> (x + W_r z, W_s z)`: the residual and skip projections of a gated unit.

    Args:
      residual_channels: width of the residual stream (the width of `x`); 0 for a last
        layer whose residual output nothing reads (then `out` is None).
      skip_channels: width of the skip output; 0 for none (then `skip` is None).
      residual: whether to add `x` (False for a first layer whose input has another
        width than the stream).
      projection: a callable `units -> layer` making each 1x1 projection; default
        `Dense`. PixelCNN passes a channel-masked 1x1 convolution.
    """

    def __init__(self, residual_channels, skip_channels=0, residual=True, projection=None, **kwargs):
        super().__init__(**kwargs)
        self.residual_channels = int(residual_channels)
        self.skip_channels = int(skip_channels)
        self.residual = bool(residual)
        make = projection or (lambda units, name: keras.layers.Dense(units, name=name))
        self.residual_projection = make(self.residual_channels, "residual") if self.residual_channels else None
        self.skip_projection = make(self.skip_channels, "skip") if self.skip_channels else None

    def call(self, x, z):
        out = None
        if self.residual_projection is not None:
            out = self.residual_projection(z)
            if self.residual:
                out = x + out
        skip = self.skip_projection(z) if self.skip_projection is not None else None
        return out, skip

    def get_config(self):
        # `projection` is code, not a hyperparameter: owners rebuild it themselves.
        return {**super().get_config(),
                **attribute_config(self, ("residual_channels", "skip_channels", "residual"))}
