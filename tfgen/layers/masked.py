"""Masked 2-D convolutions for PixelCNNs (van den Oord et al. 2016, arXiv:1601.06759
and arXiv:1606.05328).

Pixels are generated in raster order and, within a pixel, channel by channel. A masked
convolution zeroes the kernel taps that would let an output see the pixel it predicts
or later ones. The mask multiplies the kernel in the forward pass (the weights are never
assigned), so gradients of the masked taps are zero and the weights stay what the
optimizer made them.

With the kernel centre at `(c, c)`, `c = kernel_size // 2`:

- `stack="full"`: rows above the centre, and the centre row left of it (the original
  PixelCNN; it has a blind spot).
- `stack="vertical"`: every tap in the rows up to and including the centre row. The
  vertical stack of a Gated PixelCNN sees its own row, so its output must be shifted
  down one row before the horizontal stack reads it.
- `stack="horizontal"`: the centre row, left of the centre.

and the centre tap itself is connected by channel group: feature `i` belongs to group
`i % num_groups` (for colour, group g is the features that may see channels < g (type
A) or <= g (type B) of the current pixel). Type A has `out_group > in_group` (the first
layer: a pixel never sees itself), type B `out_group >= in_group` (later layers).
With `num_groups=1` type A drops the centre tap and type B keeps it.
"""

import numpy as np

from tfgen.backend import keras, tf
from tfgen.serialization import attribute_config

STACKS = ("full", "vertical", "horizontal")


def centre_tap_mask(in_channels, out_channels, mask_type, num_groups):
    """`[in, out]` 0/1 connections of the centre tap by channel group."""
    in_group = np.arange(in_channels)[:, None] % num_groups
    out_group = np.arange(out_channels)[None, :] % num_groups
    allowed = out_group > in_group if mask_type == "A" else out_group >= in_group
    return allowed.astype(np.float32)


def kernel_mask(kernel_size, in_channels, out_channels, stack, mask_type, num_groups):
    """The `[k, k, in, out]` 0/1 mask of a masked convolution (module docstring)."""
    centre = kernel_size // 2
    mask = np.zeros([kernel_size, kernel_size, in_channels, out_channels], np.float32)
    if stack == "vertical":
        mask[:centre + 1] = 1.0
        return mask
    if stack == "full":
        mask[:centre] = 1.0
    mask[centre, :centre] = 1.0
    mask[centre, centre] = centre_tap_mask(in_channels, out_channels, mask_type, num_groups)
    return mask


class MaskedConv2D(keras.layers.Layer):
    """A 2-D convolution whose kernel is masked so outputs see only earlier pixels.

    Args:
      filters: output features.
      kernel_size: odd kernel height and width.
      stack: "full", "vertical" or "horizontal" (module docstring).
      mask_type: "A" (the centre pixel's own channels are hidden from their group) or
        "B" (visible); ignored by the vertical stack.
      num_groups: channel groups at the centre tap (the image's channels).
      use_bias: add a bias.

    Example:

        conv = MaskedConv2D(32, 3, stack="horizontal", mask_type="A")
        y = conv(x)                 # a whole image [B, H, W, C], zero padding
        window = x[:, r:r + 1, c - 1:c + 1]
        y_rc = conv.call_valid(window)  # y[:, r:r + 1, c:c + 1] alone, [B, 1, 1, 32]
    """

    def __init__(self, filters, kernel_size, stack="full", mask_type="B", num_groups=1, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        if stack not in STACKS:
            raise ValueError(f"stack must be one of {STACKS}, got {stack!r}")
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.stack = stack
        self.mask_type = mask_type
        self.num_groups = int(num_groups)
        self.use_bias = bool(use_bias)

    @property
    def support(self):
        """`(rows, cols)`: the part of a `[k, k]` kernel that can be non-zero, the only
        taps stored (rows below the centre never are)."""
        centre = self.kernel_size // 2
        if self.stack == "horizontal":
            return slice(centre, centre + 1), slice(0, centre + 1)
        return slice(0, centre + 1), slice(0, self.kernel_size)

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        k = self.kernel_size
        rows, cols = self.support
        mask = kernel_mask(k, in_channels, self.filters, self.stack, self.mask_type, self.num_groups)[rows, cols]
        self.mask = tf.constant(mask)
        self.kernel = self.add_weight("kernel", list(mask.shape), initializer=keras.initializers.GlorotUniform())
        self.bias = self.add_weight("bias", [self.filters], initializer="zeros") if self.use_bias else None
        super().build(input_shape)

    def masked_kernel(self):
        return self.kernel * self.mask

    def call(self, x):
        """A whole image `[B, H, W, in]` -> `[B, H, W, filters]` (zero padding)."""
        centre = self.kernel_size // 2
        top, sides = (0, (centre, 0)) if self.stack == "horizontal" else (centre, (centre, centre))
        x = tf.pad(x, [[0, 0], [top, 0], list(sides), [0, 0]])
        return self.call_valid(x)

    def call_valid(self, window):
        """The outputs whose inputs are exactly `window` (no padding): the support's
        rows ending at the output's row and its columns ending at the output's pixel
        (horizontal) or centred on it. Cached sampling's incremental form."""
        y = tf.nn.conv2d(window, self.masked_kernel(), strides=1, padding="VALID")
        return y + self.bias if self.use_bias else y

    def get_config(self):
        return {**super().get_config(),
                **attribute_config(self, ("filters", "kernel_size", "stack", "mask_type", "num_groups", "use_bias"))}
