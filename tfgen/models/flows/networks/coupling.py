"""Networks that compute the parameters of a coupling transform from the unchanged half.

Both networks take `(inputs, condition)`: `condition` is an optional `[B, K]` class
feature that is concatenated to the input (dense) or broadcast over the image and
concatenated as extra channels (convolutional). Their last layer is zero-initialized, so
the parameters start at zero and every coupling built on them starts at the identity
(Kingma & Dhariwal 2018, arXiv:1807.03039, sec. 3.3), which keeps early training stable.
"""

from tfgen.backend import keras, tf
from tfgen.serialization import attribute_config
from tfgen.errors import UserError


def broadcast_condition(inputs, condition):
    """Concatenates `condition` `[B, K]` to the last axis of `inputs` `[B, ..., C]`.

    For images the condition is tiled over every spatial position.
    """
    if condition is None:
        return inputs
    condition = tf.cast(condition, inputs.dtype)
    spatial_rank = inputs.shape.rank - 2
    condition = tf.reshape(condition, tf.concat([tf.shape(condition)[:1], [1] * spatial_rank, tf.shape(condition)[-1:]], 0))
    tile = tf.concat([[1], tf.shape(inputs)[1:-1], [1]], 0)
    return tf.concat([inputs, tf.tile(condition, tile)], axis=-1)


class CouplingMLP(keras.layers.Layer):
    """A multilayer perceptron for vector couplings: `[B, D] -> [B, output_units]`.

    Args:
      hidden_units: width of every hidden layer.
      num_hidden_layers: number of ReLU hidden layers.
      output_units: width of the zero-initialized linear output.
    """

    def __init__(self, hidden_units, num_hidden_layers, output_units, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = int(hidden_units)
        self.num_hidden_layers = int(num_hidden_layers)
        self.output_units = int(output_units)
        self.hidden_layers = [
            keras.layers.Dense(self.hidden_units, activation="relu", name=f"hidden_{i}")
            for i in range(self.num_hidden_layers)
        ]
        self.output_layer = keras.layers.Dense(self.output_units, kernel_initializer="zeros", name="output")

    def call(self, inputs, condition=None):
        hidden = broadcast_condition(inputs, condition)
        for layer in self.hidden_layers:
            hidden = layer(hidden)
        return self.output_layer(hidden)

    def get_config(self):
        return {**super().get_config(), **attribute_config(self, ("hidden_units", "num_hidden_layers", "output_units"))}


class CouplingResNet(keras.layers.Layer):
    """A residual convolutional network for image couplings: `[B, H, W, C] -> [B, H, W, out]`.

    3x3 input convolution, `num_blocks` residual blocks `h + conv3x3(relu(conv3x3(relu(h))))`,
    then a zero-initialized 3x3 output convolution (Dinh et al. 2017, arXiv:1605.08803,
    use residual networks of this kind in RealNVP's couplings).

    Args:
      filters: channels of the hidden feature maps.
      num_blocks: number of residual blocks.
      output_channels: channels of the output.
    """

    def __init__(self, filters, num_blocks, output_channels, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.num_blocks = int(num_blocks)
        self.output_channels = int(output_channels)
        conv = lambda name, **kw: keras.layers.Conv2D(self.filters, 3, padding="same", name=name, **kw)  # noqa: E731
        self.input_conv = conv("input")
        self.blocks = [(conv(f"block_{i}_a"), conv(f"block_{i}_b")) for i in range(self.num_blocks)]
        self.output_conv = keras.layers.Conv2D(
            self.output_channels, 3, padding="same", kernel_initializer="zeros", name="output"
        )

    def call(self, inputs, condition=None):
        hidden = self.input_conv(broadcast_condition(inputs, condition))
        for first, second in self.blocks:
            hidden = hidden + second(tf.nn.relu(first(tf.nn.relu(hidden))))
        return self.output_conv(tf.nn.relu(hidden))

    def get_config(self):
        return {**super().get_config(), **attribute_config(self, ("filters", "num_blocks", "output_channels"))}


def coupling_network(event_shape, hidden_units, num_hidden_layers, params_per_dim, name):
    """The coupling network suited to `event_shape`: an MLP for vectors, a ResNet for images.

    Its output holds `params_per_dim` parameters for every element of the event, laid out
    so that reshaping to `[B, *event_shape, params_per_dim]` lines them up with the input.
    """
    if len(event_shape) == 1:
        return CouplingMLP(hidden_units, num_hidden_layers, event_shape[0] * params_per_dim, name=name)
    if len(event_shape) == 3:
        return CouplingResNet(hidden_units, num_hidden_layers, event_shape[-1] * params_per_dim, name=name)
    raise UserError(f"coupling networks take vectors (D,) or images (H, W, C), got {tuple(event_shape)}")
