"""Per-row stateless randomness.

Every random draw in a signature is keyed by the row's own int64 seed, so the same seed
gives the same sample in any batch, in any process, before and after export.
"""

from tfgen.backend import tf


def _row_key(seed, salt):
    return tf.stack([tf.cast(seed, tf.int64), tf.constant(salt, tf.int64)])


def per_row_normal(seed, event_shape, salt=0, dtype=tf.float32):
    """Standard normal draws of shape `[B, *event_shape]`, row b keyed by `seed[b]`.

    Args:
      seed: int64 `[B]`.
      event_shape: static shape of one row.
      salt: distinguishes independent streams drawn from the same seeds.
    """
    event_shape = list(event_shape)
    return tf.map_fn(
        lambda s: tf.random.stateless_normal(event_shape, seed=_row_key(s, salt), dtype=dtype),
        tf.cast(seed, tf.int64),
        fn_output_signature=tf.TensorSpec(event_shape, dtype),
    )


def per_row_uniform(seed, event_shape, salt=0, dtype=tf.float32):
    """Uniform [0, 1) draws of shape `[B, *event_shape]`, row b keyed by `seed[b]`.

    A dim of `event_shape` may be a scalar tensor (e.g. a requested audio length); a
    row's draws along the first axis then begin with the same values for any length.
    """
    event_shape = list(event_shape)
    static = [d if isinstance(d, int) else None for d in event_shape]
    return tf.map_fn(
        lambda s: tf.random.stateless_uniform(event_shape, seed=_row_key(s, salt), dtype=dtype),
        tf.cast(seed, tf.int64),
        fn_output_signature=tf.TensorSpec(static, dtype),
    )
