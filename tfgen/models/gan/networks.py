"""Generator and discriminator networks of the GAN family.

- `mlp`: dense layers, for vectors (or flattened images).
- `dcgan` (Radford et al. 2016, arXiv:1511.06434): the generator projects z to a small
  feature map and doubles its side with stride-2 transposed convolutions, batch norm and
  ReLU between them, tanh at the end; the discriminator halves the side with stride-2
  convolutions and LeakyReLU, no batch norm (a WGAN-GP critic must not have it).

A conditional generator reads a learned class embedding beside z; a conditional
discriminator is a projection discriminator (Miyato & Koyama 2018, arXiv:1802.05637):

    D(x, y) = psi(phi(x)) + <embed(y), phi(x)>

Both networks work in the model's unit space ([-1, 1] for discrete data).
"""

import math

from tfgen.backend import keras, tf
from tfgen.errors import UserError

NETWORKS = ("mlp", "dcgan")


def check_network(network, event_shape, num_upsamplings):
    if network not in NETWORKS:
        raise UserError(f"unknown GAN network {network!r}; valid: {list(NETWORKS)}")
    if network == "dcgan":
        side = 2 ** num_upsamplings
        if len(event_shape) != 3 or event_shape[0] % side or event_shape[1] % side:
            raise UserError(f"network 'dcgan' with {num_upsamplings} upsamplings needs images [H, W, C] with H and "
                            f"W multiples of {side}, got event_shape {list(event_shape)}; use network 'mlp'")


class SpectralNormalization(keras.layers.Wrapper):
    """W / sigma(W) for a Dense or Conv2D layer (Miyato et al. 2018, arXiv:1802.05957),
    sigma the largest singular value, estimated by one power iteration per training call.

    Unlike `tf_keras.layers.SpectralNormalization`, which assigns the normalized kernel
    into the layer's trainable variable during the forward pass, this computes W / sigma
    as a tensor, so the gradient flows through sigma and only the (non-trainable) power
    iteration vector is written, identically on every replica.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.vector_u = self.add_weight(
            name="vector_u", shape=(1, self.layer.kernel.shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=1.0), trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def normalized_kernel(self, training):
        kernel = self.layer.kernel
        matrix = tf.reshape(kernel, [-1, kernel.shape[-1]])
        u = self.vector_u
        v = tf.math.l2_normalize(tf.matmul(u, matrix, transpose_b=True))
        u_next = tf.stop_gradient(tf.math.l2_normalize(tf.matmul(v, matrix)))
        v = tf.stop_gradient(v)
        if training:
            self.vector_u.assign(u_next)
        sigma = tf.reduce_sum(tf.matmul(v, matrix) * u_next)
        return kernel / sigma

    def call(self, inputs, training=False):
        kernel = self.normalized_kernel(training)
        layer = self.layer
        if isinstance(layer, keras.layers.Conv2D):
            outputs = layer.convolution_op(inputs, kernel)
        else:
            outputs = tf.matmul(inputs, kernel)
        if layer.use_bias:
            outputs = tf.nn.bias_add(outputs, layer.bias)
        return layer.activation(outputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def _maybe_normalized(layer, spectral_normalization):
    return SpectralNormalization(layer, name=f"sn_{layer.name}") if spectral_normalization else layer


def _batch_norm(name):
    """Batch norm that, under a strategy with several replicas, normalizes with the global
    batch's statistics (`synchronized`), as single-device training on that batch would.

    Why not per-replica statistics: the moving mean and variance are sync-on-read
    variables; with local statistics every replica's copy drifts apart, a checkpoint
    stores only their mean, and a resumed run continues from that mean instead of the
    copies, so it ends a rounding error away from the uninterrupted one. Synchronized,
    every copy holds the same bits and the mean restores them exactly. One replica keeps
    the fused kernel (the synchronized path has none).
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return keras.layers.BatchNormalization(synchronized=replicas > 1, name=name)


class Generator(keras.layers.Layer):
    """`(z [B, latent_dim], class_features [B, K] or None) -> [B, *event_shape]` in unit space.

    Args:
      network: "mlp" or "dcgan".
      event_shape: the data's event shape.
      hidden_units: "mlp": widths of the hidden dense layers.
      filters: "dcgan": filters of the feature maps, widest first; the first map has
        side H / 2^len(filters), each following transposed convolution doubles it.
      batch_norm: batch norm after each hidden layer.
      output_activation: "tanh" (data in [-1, 1]) or "linear" (unbounded data).
    """

    def __init__(self, network, event_shape, hidden_units, filters, batch_norm, output_activation, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.event_shape = list(event_shape)
        self.output_activation = keras.activations.get(output_activation)
        self.hidden = []
        if network == "mlp":
            for i, units in enumerate(hidden_units):
                self.hidden.append(keras.layers.Dense(units, use_bias=not batch_norm, name=f"dense_{i}"))
                if batch_norm:
                    self.hidden.append(_batch_norm(f"batch_norm_{i}"))
                self.hidden.append(keras.layers.ReLU())
            self.out = keras.layers.Dense(math.prod(self.event_shape), name="out")
        else:
            height, width, channels = self.event_shape
            scale = 2 ** len(filters)
            self.start_shape = [height // scale, width // scale, filters[0]]
            self.hidden.append(keras.layers.Dense(math.prod(self.start_shape), use_bias=not batch_norm,
                                                  name="project"))
            self.hidden.append(keras.layers.Reshape(self.start_shape))
            for i, f in enumerate([None] + list(filters[1:])):
                if f is not None:
                    self.hidden.append(keras.layers.Conv2DTranspose(f, 4, strides=2, padding="same",
                                                                    use_bias=not batch_norm, name=f"up_{i}"))
                if batch_norm:
                    self.hidden.append(_batch_norm(f"batch_norm_{i}"))
                self.hidden.append(keras.layers.ReLU())
            self.out = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="out")

    def call(self, z, class_features=None, training=False):
        h = z if class_features is None else tf.concat([z, class_features], -1)
        for layer in self.hidden:
            h = layer(h, training=training)
        h = self.output_activation(self.out(h))
        return tf.reshape(h, [-1, *self.event_shape])


class Discriminator(keras.layers.Layer):
    """`(x [B, *event_shape] in unit space, condition [B] or None) -> [B]` logits or
    critic values; with `num_classes`, a projection discriminator.

    Args:
      network: "mlp" or "dcgan".
      event_shape: the data's event shape.
      hidden_units: "mlp": widths of the dense layers (at least one).
      filters: "dcgan": filters of the stride-2 convolutions.
      leaky_relu_slope: negative slope of every LeakyReLU.
      spectral_normalization: wrap every dense and convolution layer (and the class
        projection) in `SpectralNormalization`.
      num_classes: classes of a projection discriminator, or None.
    """

    def __init__(self, network, event_shape, hidden_units, filters, leaky_relu_slope, spectral_normalization,
                 num_classes=None, **kwargs):
        super().__init__(**kwargs)
        sn = spectral_normalization
        self.layers_ = []
        if network == "dcgan":
            for i, f in enumerate(filters):
                self.layers_.append(_maybe_normalized(
                    keras.layers.Conv2D(f, 4, strides=2, padding="same", name=f"conv_{i}"), sn))
                self.layers_.append(keras.layers.LeakyReLU(leaky_relu_slope))
            scale = 2 ** len(filters)
            feature_dim = filters[-1] * (event_shape[0] // scale) * (event_shape[1] // scale)
        else:
            if not hidden_units:
                raise UserError("network 'mlp' needs at least one discriminator hidden layer")
            feature_dim = hidden_units[-1]
        self.layers_.append(keras.layers.Flatten())
        for i, units in enumerate(hidden_units if network == "mlp" else []):
            self.layers_.append(_maybe_normalized(keras.layers.Dense(units, name=f"dense_{i}"), sn))
            self.layers_.append(keras.layers.LeakyReLU(leaky_relu_slope))
        self.head = _maybe_normalized(keras.layers.Dense(1, name="head"), sn)
        self.num_classes = num_classes
        # The class embedding of the projection, as a bias-free dense layer on one-hot
        # classes, so spectral normalization applies to it like to every other layer.
        self.projection = None if num_classes is None else _maybe_normalized(
            keras.layers.Dense(feature_dim, use_bias=False, name="projection"), sn)

    def call(self, x, condition=None, training=False):
        h = x
        for layer in self.layers_:
            h = layer(h, training=training)
        outputs = self.head(h, training=training)[:, 0]
        if condition is not None:
            embedded = self.projection(tf.one_hot(condition, self.num_classes), training=training)
            outputs += tf.reduce_sum(embedded * h, -1)
        return outputs
