"""Encoder and decoder networks of the VAE: MLPs for any data, convolutions for images.

The encoder maps (scaled) data and an optional class embedding to a feature vector `h`,
from which the model reads the Gaussian posterior's parameters and any posterior flow's
amortized parameters. The decoder maps a code (and the class embedding) to
`params_per_dim` numbers per data dimension, `[B, *event_shape, params_per_dim]`.
"""

import math

from tfgen.backend import keras, tf
from tfgen.errors import UserError

NETWORKS = ("mlp", "conv")


def check_network(network, event_shape):
    if network not in NETWORKS:
        raise UserError(f"unknown network {network!r}; valid: {list(NETWORKS)}")
    if network == "conv":
        if len(event_shape) != 3 or event_shape[0] % 4 or event_shape[1] % 4:
            raise UserError(f"network 'conv' needs images [H, W, C] with H and W multiples of 4, "
                            f"got event_shape {list(event_shape)}; use network 'mlp'")


class Encoder(keras.layers.Layer):
    """`(x [B, *event], class_features [B, K] or None) -> h [B, feature_dim]`.

    Args:
      network: "mlp" (dense layers of `hidden_units`) or "conv" (two stride-2
        convolutions of `conv_filters`, then the dense layers).
      hidden_units: widths of the dense layers; the last is the feature width (an
        empty list gives the flattened input itself, e.g. for a linear encoder).
      conv_filters: filters of the two convolutions ("conv" only).
      activation: Keras activation of every hidden layer.
    """

    def __init__(self, network, hidden_units, conv_filters, activation, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.convolutions = []
        if network == "conv":
            self.convolutions = [keras.layers.Conv2D(f, 3, strides=2, padding="same", activation=activation,
                                                     name=f"conv_{i}") for i, f in enumerate(conv_filters)]
        self.dense = [keras.layers.Dense(u, activation=activation, name=f"dense_{i}")
                      for i, u in enumerate(hidden_units)]

    def call(self, x, class_features=None):
        h = x
        for convolution in self.convolutions:
            h = convolution(h)
        h = tf.reshape(h, [-1, math.prod(h.shape[1:])])
        if class_features is not None:
            h = tf.concat([h, class_features], -1)
        for layer in self.dense:
            h = layer(h)
        return h


class Decoder(keras.layers.Layer):
    """`(z [B, L], class_features or None) -> [B, *event_shape, params_per_dim]`.

    Args:
      network: "mlp" or "conv" (dense layers, then two stride-2 transposed
        convolutions from a quarter-resolution map, mirroring the encoder).
      event_shape: shape of one example.
      params_per_dim: outputs per data dimension (the likelihood's parameters).
      hidden_units: widths of the dense layers, in the order they are applied (an
        empty list gives a linear decoder).
      conv_filters: filters of the two transposed convolutions' inputs ("conv" only).
      activation: Keras activation of every hidden layer.
    """

    def __init__(self, network, event_shape, params_per_dim, hidden_units, conv_filters, activation, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.event_shape = tuple(event_shape)
        self.params_per_dim = int(params_per_dim)
        self.dense = [keras.layers.Dense(u, activation=activation, name=f"dense_{i}")
                      for i, u in enumerate(hidden_units)]
        if network == "conv":
            height, width, channels = self.event_shape
            filters = list(conv_filters)[::-1]
            self.map_shape = (height // 4, width // 4, filters[0])
            self.to_map = keras.layers.Dense(math.prod(self.map_shape), activation=activation, name="to_map")
            self.transposed = [
                keras.layers.Conv2DTranspose(filters[1], 3, strides=2, padding="same", activation=activation,
                                             name="deconv_0"),
                keras.layers.Conv2DTranspose(channels * self.params_per_dim, 3, strides=2, padding="same",
                                             name="deconv_1"),
            ]
        else:
            self.output_layer = keras.layers.Dense(math.prod(self.event_shape) * self.params_per_dim, name="output")

    def call(self, z, class_features=None):
        h = z if class_features is None else tf.concat([z, class_features], -1)
        for layer in self.dense:
            h = layer(h)
        if self.network == "conv":
            h = tf.reshape(self.to_map(h), [-1, *self.map_shape])
            for layer in self.transposed:
                h = layer(h)
        else:
            h = self.output_layer(h)
        return tf.reshape(h, [-1, *self.event_shape, self.params_per_dim])
