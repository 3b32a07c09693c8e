"""A coupling layer defined by a binary mask: the masked-in part conditions the rest."""

import numpy as np

from tfgen.backend import tf
from tfgen.models.flows.bijectors.base import CallScopedBijector


class MaskedCoupling(CallScopedBijector):
    """Coupling bijector `y = b * x + (1 - b) * f(x; theta(b * x))` for a binary mask `b`.

    With `f` an elementwise transformer (additive, affine, spline), the Jacobian is
    triangular and

        log |det dy/dx| = sum_i (1 - b_i) log |f'(x_i; theta_i(b * x))|.

    The inverse is `x = b * y + (1 - b) * f^-1(y; theta(b * y))`, exact because
    `b * y == b * x`. One class covers vectors (half masks), images with checkerboard
    masks and images with channel masks (Dinh et al. 2017, "Density estimation using
    Real NVP", arXiv:1605.08803, sec. 3.3-3.4); NICE's additive coupling (arXiv:1410.8516)
    and neural spline couplings (arXiv:1906.04032) differ only in `f`.

    Args:
      mask: 0/1 array of the event shape; 1 marks the elements left unchanged.
      parameters_fn: callable `masked_x [B, *event] -> params [B, *event, P]`.
      transformer: a `tfgen.models.flows.bijectors.transformers` object with `bijector(params)`.
      name: bijector name.
    """

    def __init__(self, mask, parameters_fn, transformer, validate_args=False, name="masked_coupling"):
        mask = np.asarray(mask, dtype=np.float32)
        self._mask = tf.constant(mask)
        self._keep = tf.constant(mask > 0.5)
        self._parameters_fn = parameters_fn
        self._transformer = transformer
        self._memo = {}
        super().__init__(mask.ndim, name, validate_args=validate_args)

    def _elementwise(self, tensor, result=None):
        """The transformer for `tensor`, remembered for `tensor` and its image `result`.

        Both directions need the conditioner network once for the values and once for
        the log-det; remembering it per input tensor (this bijector lives for one call)
        halves the network evaluations.
        """
        key = tensor.ref()
        if key not in self._memo:
            self._memo[key] = self._transformer.bijector(self._parameters_fn(tensor * self._mask))
        if result is not None:
            self._memo[result.ref()] = self._memo[key]
        return self._memo[key]

    def _reduce(self, elementwise_log_det):
        transformed = tf.where(self._keep, tf.zeros_like(elementwise_log_det), elementwise_log_det)
        return tf.reduce_sum(transformed, axis=list(range(-self._mask.shape.rank, 0)))

    def _forward(self, x):
        y = tf.where(self._keep, x, self._elementwise(x).forward(x))
        self._elementwise(x, result=y)
        return y

    def _inverse(self, y):
        x = tf.where(self._keep, y, self._elementwise(y).inverse(y))
        self._elementwise(y, result=x)
        return x

    def _forward_log_det_jacobian(self, x):
        return self._reduce(self._elementwise(x).forward_log_det_jacobian(x, event_ndims=0))

    def _inverse_log_det_jacobian(self, y):
        return self._reduce(self._elementwise(y).inverse_log_det_jacobian(y, event_ndims=0))
