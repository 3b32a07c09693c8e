"""Activation normalization (Glow) as a TFP bijector over variables held by a Keras layer."""

from tfgen.backend import tf
from tfgen.models.flows.bijectors.base import CallScopedBijector


class ActNorm(CallScopedBijector):
    """`y = x * exp(log_scale) + shift`, parameters broadcast over the leading event axes.

    Kingma & Dhariwal 2018, "Glow", arXiv:1807.03039, sec. 3.1. With parameters of shape
    `[C]` on images `[H, W, C]`, `log|det dy/dx| = H * W * sum(log_scale)`.

    With `initialize=True` the inverse (data -> latent) first runs the layer's
    data-dependent initialization on the incoming batch, so the activations leaving it
    have zero mean and unit variance on the first training batch.

    Args:
      parameters_layer: a `tfgen.models.flows.networks.ActNormParameters`.
      initialize: whether the inverse may initialize the parameters from its input.
    """

    def __init__(self, parameters_layer, initialize=False, validate_args=False, name="actnorm"):
        self._layer = parameters_layer
        self._initialize = bool(initialize)
        super().__init__(len(parameters_layer.parameter_shape), name, is_constant_jacobian=True, validate_args=validate_args)

    def _forward(self, x):
        return x * tf.exp(self._layer.log_scale) + self._layer.shift

    def _inverse(self, y):
        if self._initialize:
            with tf.control_dependencies([self._layer.initialize_from(y)]):
                y = tf.identity(y)
        return (y - self._layer.shift) * tf.exp(-self._layer.log_scale)

    def _forward_log_det_jacobian(self, x):
        return tf.reduce_sum(self._layer.log_scale)
