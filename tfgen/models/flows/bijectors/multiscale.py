"""Multi-scale pieces of image flows: squeezing space into channels and factoring out."""

from tfgen.backend import tf, tfb
from tfgen.models.flows.bijectors.base import CallScopedBijector
from tfgen.models.flows.bijectors.chain import Chain
from tfgen.errors import UserError


def squeeze(event_shape):
    """Bijector `[H, W, C] -> [H/2, W/2, 4C]`: each 2x2 patch becomes 4 channels.

    Dinh et al. 2017, arXiv:1605.08803, sec. 3.6. Built from `tfb.Reshape` and
    `tfb.Transpose`, so it only moves values (log-det 0) and traces with any batch size.
    """
    height, width, channels = (int(d) for d in event_shape)
    if height % 2 or width % 2:
        raise UserError(f"cannot squeeze an image of odd size {height}x{width}")
    patches = [height // 2, 2, width // 2, 2, channels]
    return Chain(
        [
            tfb.Reshape(event_shape_out=[height // 2, width // 2, 4 * channels], event_shape_in=[height // 2, width // 2, 2, 2, channels]),
            tfb.Transpose(perm=[0, 2, 1, 3, 4]),
            tfb.Reshape(event_shape_out=patches, event_shape_in=[height, width, channels]),
        ],
        name="squeeze",
    )


class FactorOut(CallScopedBijector):
    """Applies `inner` to the first `num_channels` channels and the identity to the rest.

    `y = concat(inner(x[..., :k]), x[..., k:])`, `log|det| = log|det inner'(x[..., :k])|`.
    Read in the data -> latent direction this is the multi-scale split of RealNVP and
    Glow (arXiv:1605.08803 sec. 3.6, arXiv:1807.03039): the last channels leave the flow
    early and are modelled by the standard normal prior, the rest go on to `inner`.

    Args:
      inner: bijector on events `[H, W, num_channels]`.
      num_channels: k, the number of channels `inner` sees.
      event_ndims: rank of the event (3 for images).
    """

    def __init__(self, inner, num_channels, event_ndims=3, validate_args=False, name="factor_out"):
        self._inner = inner
        self._num_channels = int(num_channels)
        self._event_ndims = int(event_ndims)
        super().__init__(self._event_ndims, name, validate_args=validate_args)

    def _split(self, x):
        return x[..., : self._num_channels], x[..., self._num_channels :]

    def _forward(self, x):
        inner, rest = self._split(x)
        return tf.concat([self._inner.forward(inner), rest], axis=-1)

    def _inverse(self, y):
        inner, rest = self._split(y)
        return tf.concat([self._inner.inverse(inner), rest], axis=-1)

    def _forward_log_det_jacobian(self, x):
        return self._inner.forward_log_det_jacobian(self._split(x)[0], event_ndims=self._event_ndims)

    def _inverse_log_det_jacobian(self, y):
        return self._inner.inverse_log_det_jacobian(self._split(y)[0], event_ndims=self._event_ndims)
