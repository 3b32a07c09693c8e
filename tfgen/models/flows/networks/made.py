"""MADE: a dense network whose outputs depend autoregressively on its inputs.

Germain et al. 2015, "MADE: Masked Autoencoder for Distribution Estimation",
arXiv:1502.03509. Every input and hidden unit gets a degree; a connection from a unit of
degree d to a hidden unit of degree d' exists iff d' >= d, and to an output of degree d'
iff d' > d. Output i therefore depends only on inputs 1 .. i-1, which is what a masked
autoregressive flow (Papamakarios et al. 2017, arXiv:1705.07057) needs. The masks are
constants computed once; each call multiplies the kernel by its mask (never assigns).
"""

import numpy as np

from tfgen.backend import keras, tf
from tfgen.serialization import attribute_config
from tfgen.errors import UserError


def made_degrees(num_inputs, hidden_units, num_hidden_layers):
    """Degrees of the inputs (1..D) and of every hidden layer (cycling over 1..D-1)."""
    input_degrees = np.arange(1, num_inputs + 1)
    max_hidden_degree = max(num_inputs - 1, 1)
    hidden_degrees = [np.arange(hidden_units) % max_hidden_degree + 1 for _ in range(num_hidden_layers)]
    return input_degrees, hidden_degrees


class MaskedDense(keras.layers.Layer):
    """A dense layer `y = x (W * M) + b` with a fixed binary connectivity mask `M`.

    Args:
      mask: `[in, out]` 0/1 array.
      activation: Keras activation name or None.
      kernel_initializer: Keras initializer for `W`.
    """

    def __init__(self, mask, activation=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.mask = np.asarray(mask, dtype=np.float32)
        self.activation = keras.activations.get(activation)
        self.kernel = self.add_weight(
            "kernel", shape=self.mask.shape, initializer=kernel_initializer, trainable=True
        )
        self.bias = self.add_weight("bias", shape=self.mask.shape[1:], initializer="zeros", trainable=True)

    def call(self, inputs):
        return self.activation(tf.matmul(inputs, self.kernel * self.mask) + self.bias)


class MADE(keras.layers.Layer):
    """Autoregressive parameters: `[B, D] -> [B, D, params_per_dim]`, row i from x_{<i}.

    A class condition `[B, K]` enters every hidden layer and the output through unmasked
    dense projections, so it influences every output without breaking the ordering.

    Args:
      num_inputs: D.
      hidden_units: width of every hidden layer (>= D-1 keeps every output reachable).
      num_hidden_layers: number of masked ReLU hidden layers (>= 1).
      params_per_dim: parameters per output dimension.
    """

    def __init__(self, num_inputs, hidden_units, num_hidden_layers, params_per_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_inputs = int(num_inputs)
        self.hidden_units = int(hidden_units)
        self.num_hidden_layers = int(num_hidden_layers)
        self.params_per_dim = int(params_per_dim)
        if self.num_hidden_layers < 1:
            raise UserError("MADE needs at least one hidden layer")
        input_degrees, hidden_degrees = made_degrees(self.num_inputs, self.hidden_units, self.num_hidden_layers)
        degrees = [input_degrees] + hidden_degrees
        self.hidden_layers = [
            MaskedDense(degrees[i][:, None] <= degrees[i + 1][None, :], activation=None, name=f"hidden_{i}")
            for i in range(self.num_hidden_layers)
        ]
        # Output unit (i, p) carries parameter p of dimension i, with degree i+1.
        output_degrees = np.repeat(input_degrees, self.params_per_dim)
        self.output_layer = MaskedDense(
            degrees[-1][:, None] < output_degrees[None, :], kernel_initializer="zeros", name="output"
        )
        self.condition_layers = [
            keras.layers.Dense(self.hidden_units, use_bias=False, name=f"condition_{i}")
            for i in range(self.num_hidden_layers)
        ]
        # The first dimension sees no input, so the condition also feeds the outputs
        # directly (zero-initialized, like the masked output layer).
        self.condition_output = keras.layers.Dense(
            len(output_degrees), use_bias=False, kernel_initializer="zeros", name="condition_output"
        )

    def call(self, inputs, condition=None):
        hidden = inputs
        for i, layer in enumerate(self.hidden_layers):
            hidden = layer(hidden)
            if condition is not None:
                hidden = hidden + self.condition_layers[i](tf.cast(condition, hidden.dtype))
            hidden = tf.nn.relu(hidden)
        params = self.output_layer(hidden)
        if condition is not None:
            params = params + self.condition_output(tf.cast(condition, params.dtype))
        return tf.reshape(params, tf.concat([tf.shape(inputs), [self.params_per_dim]], 0))

    def get_config(self):
        names = ("num_inputs", "hidden_units", "num_hidden_layers", "params_per_dim")
        return {**super().get_config(), **attribute_config(self, names)}
