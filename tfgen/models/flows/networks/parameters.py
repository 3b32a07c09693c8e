"""Keras layers that only own the variables of parameterized bijectors (ActNorm, 1x1 conv).

Bijectors are cheap TFP objects rebuilt on every call; the variables they read live here,
in layers the model creates once, so Keras tracks, trains and checkpoints them.
"""

import numpy as np

from tfgen.backend import keras, tf

# Per-replica statistics are averaged across replicas on write, so a data-dependent
# initialization under a `tf.distribute` strategy sees the global batch.
_MEAN = tf.VariableAggregation.MEAN


class ActNormParameters(keras.layers.Layer):
    """Shift and log-scale of an activation normalization, with data-dependent init.

    Kingma & Dhariwal 2018, "Glow", arXiv:1807.03039, sec. 3.1: the first batch sets the
    parameters so that the normalized activations have zero mean and unit variance per
    channel; afterwards they are ordinary trainable variables.

    Args:
      shape: parameter shape, broadcast against the rightmost event axes (`[C]` per
        channel, or the whole event shape for an elementwise scale).
    """

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.parameter_shape = [int(d) for d in shape]
        self.shift = self.add_weight("shift", shape=self.parameter_shape, initializer="zeros", aggregation=_MEAN)
        self.log_scale = self.add_weight(
            "log_scale", shape=self.parameter_shape, initializer="zeros", aggregation=_MEAN
        )
        self.initialized = self.add_weight(
            "initialized", shape=[], initializer="zeros", trainable=False, aggregation=_MEAN
        )

    def initialize_from(self, outputs, epsilon=1e-6):
        """Sets shift/log-scale from `outputs` (data side) if not yet initialized; no-op after.

        Written without `tf.cond` so it also runs inside replica contexts and XLA: the
        assignments always happen, but keep the current values once initialized.
        """
        outputs = tf.stop_gradient(outputs)
        axes = list(range(outputs.shape.rank - len(self.parameter_shape)))
        mean, variance = tf.nn.moments(outputs, axes=axes)
        keep = self.initialized > 0.5
        shift = tf.where(keep, self.shift, mean)
        log_scale = tf.where(keep, self.log_scale, 0.5 * tf.math.log(variance + epsilon))
        return tf.group(
            self.shift.assign(shift), self.log_scale.assign(log_scale), self.initialized.assign(1.0)
        )

    def get_config(self):
        config = super().get_config()
        config.update(shape=self.parameter_shape)
        return config


class LUParameters(keras.layers.Layer):
    """An invertible `C x C` matrix `W = P L U` stored as a fixed permutation and trainable L, U.

    Kingma & Dhariwal 2018, arXiv:1807.03039, sec. 3.2 (LU-decomposed 1x1 convolution):
    `log|det W| = sum log|diag U|`. Initialized from a random rotation drawn with `seed`,
    so rebuilding from config gives the same permutation.

    Args:
      channels: C.
      seed: numpy seed of the initial rotation.
    """

    def __init__(self, channels, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.seed = int(seed)
        rotation = np.linalg.qr(np.random.default_rng(self.seed).normal(size=(self.channels, self.channels)))[0]
        with tf.init_scope():
            lower_upper, permutation = tf.linalg.lu(tf.constant(rotation, tf.float32))
            lower_upper, permutation = lower_upper.numpy(), permutation.numpy()
        self.lower_upper = self.add_weight(
            "lower_upper", shape=lower_upper.shape, initializer=keras.initializers.Constant(lower_upper)
        )
        self.permutation = self.add_weight(
            "permutation", shape=permutation.shape, dtype=tf.int32, trainable=False,
            initializer=keras.initializers.Constant(permutation),
        )

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, seed=self.seed)
        return config
