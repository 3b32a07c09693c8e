"""Data <-> [-1, 1]: the range GAN generators (tanh) and diffusion models work in.

Discrete data on L levels maps level k to 2k / (L - 1) - 1; continuous data is used as
it is. Back from [-1, 1], values are clipped to the levels' range and, unless asked
otherwise, rounded to a level.
"""

from tfgen.backend import tf


def to_symmetric(x, data_spec):
    """Data `x` (levels 0 .. L-1 for discrete data) in [-1, 1]."""
    x = tf.convert_to_tensor(x, tf.float32)
    if data_spec.is_discrete:
        return x / (data_spec.levels - 1) * 2.0 - 1.0
    return x


def from_symmetric(u, data_spec, rounded=True):
    """`u` in [-1, 1] as data: for discrete data clipped to 0 .. L-1 and, if `rounded`,
    rounded to the nearest level."""
    if not data_spec.is_discrete:
        return u
    top = data_spec.levels - 1.0
    x = (u + 1.0) / 2.0 * top
    return tf.clip_by_value(tf.round(x) if rounded else x, 0.0, top)
