"""Per-row stateless randomness.

Every random draw in a signature is keyed by the row's own int64 seed, so the same seed
gives the same sample in any batch, in any process, before and after export.
"""

from tfgen.backend import tf


def _row_key(seed, salt):
    return tf.stack([tf.cast(seed, tf.int64), tf.cast(salt, tf.int64)])


def per_row_normal(seed, event_shape, salt=0, dtype=tf.float32):
    """Standard normal draws of shape `[B, *event_shape]`, row b keyed by `seed[b]`.

    Args:
      seed: int64 `[B]`.
      event_shape: static shape of one row.
      salt: distinguishes independent streams drawn from the same seeds: one int, or
        int64 `[B]`, one per row (a sampler's step index when rows take different steps).
    """
    event_shape = list(event_shape)
    seed = tf.cast(seed, tf.int64)
    salt = tf.broadcast_to(tf.cast(salt, tf.int64), tf.shape(seed))
    return tf.map_fn(
        lambda pair: tf.random.stateless_normal(event_shape, seed=_row_key(*pair), dtype=dtype),
        (seed, salt),
        fn_output_signature=tf.TensorSpec(event_shape, dtype),
    )


def training_seed(noise_seed, step, draw, draws_per_step):
    """The stateless seed of training draw `draw` (0 .. draws_per_step-1) at optimizer
    step `step` on this replica: a run resumed from a checkpoint draws exactly the noise
    the uninterrupted run would have drawn, and replicas draw independently."""
    replica = tf.distribute.get_replica_context()
    replica_id = tf.cast(replica.replica_id_in_sync_group if replica is not None else 0, tf.int64)
    step = tf.cast(step, tf.int64)
    return tf.stack([noise_seed * 1_000_003 + replica_id, step * draws_per_step + draw])


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
