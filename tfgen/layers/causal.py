"""Causal, dilated 1-D convolutions (WaveNet, van den Oord et al. 2016, arXiv:1609.03499).

Output `t` sees inputs `t - (kernel_size - 1 - i) * dilation_rate`, `i = 0..k-1`: the
present and the past only (Keras' "causal" padding, which pads the past with zeros).
`call_step` is the same convolution at one time step from its `kernel_size` taps, the
form Fast WaveNet's per-layer queues feed (Paine et al. 2016, arXiv:1611.09482).
"""

from tfgen.backend import keras, tf


class CausalConv1D(keras.layers.Conv1D):
    """`keras.layers.Conv1D` with `padding="causal"`, plus a one-step form.

    Args:
      filters, kernel_size, dilation_rate, use_bias: as `keras.layers.Conv1D`.

    Example:

        conv = CausalConv1D(32, 2, dilation_rate=4)
        y = conv(x)                                  # [B, T, C] -> [B, T, 32]
        taps = tf.stack([x[:, t - 4], x[:, t]], 1)   # the inputs output t reads
        y_t = conv.call_step(taps)                   # == y[:, t]
    """

    def __init__(self, filters, kernel_size, dilation_rate=1, use_bias=True, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(filters, kernel_size, dilation_rate=dilation_rate, padding="causal",
                         use_bias=use_bias, **kwargs)

    @property
    def receptive_field(self):
        """How many inputs, including the present one, an output depends on."""
        return (self.kernel_size[0] - 1) * self.dilation_rate[0] + 1

    def call_step(self, taps):
        """`[B, kernel_size, in]` taps, oldest first -> the output `[B, filters]`."""
        y = tf.einsum("bki,kio->bo", taps, self.kernel)
        return y + self.bias if self.use_bias else y

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        return config
