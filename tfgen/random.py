"""Per-row stateless randomness.

Every random draw in a signature is keyed by the row's own int64 seed, so the same seed
gives the same sample in any batch, in any process, before and after export: row b's
draw is `tf.random.stateless_uniform(event_shape, seed=[seed[b], salt])` (respectively
`stateless_normal`), made one row at a time in a `tf.map_fn` (TensorFlow has no
stateless op taking one key per row). A vectorized Philox in element-wise ops was
measured and not kept: no faster served, larger graphs, slower to trace and export
(docs/benchmarks.md, "Per-row draws").
"""

from tfgen.backend import tf


def _per_row(draw, seed, event_shape, salt, dtype):
    """`draw(shape, seed=[seed[b], salt[b]])` for every row b; `salt` an int, or int64
    `[]` or `[B]`."""
    event_shape = list(event_shape)
    static = [d if isinstance(d, int) else None for d in event_shape]
    seed = tf.cast(seed, tf.int64)
    salt = tf.broadcast_to(tf.cast(salt, tf.int64), tf.shape(seed))
    return tf.map_fn(
        lambda pair: draw(event_shape, seed=tf.stack(pair), dtype=dtype),
        (seed, salt),
        fn_output_signature=tf.TensorSpec(static, dtype),
    )


def per_row_normal(seed, event_shape, salt=0, dtype=tf.float32):
    """Standard normal draws of shape `[B, *event_shape]`, row b keyed by `seed[b]`.

    Args:
      seed: int64 `[B]`.
      event_shape: shape of one row (ints, or scalar tensors).
      salt: distinguishes independent streams drawn from the same seeds: an int, or
        int64 `[]` or `[B]` (one per row, e.g. a sampler's step when rows take different
        steps).
    """
    return _per_row(tf.random.stateless_normal, seed, event_shape, salt, dtype)


def per_row_uniform(seed, event_shape, salt=0, dtype=tf.float32):
    """Uniform [0, 1) draws of shape `[B, *event_shape]`, row b keyed by `seed[b]`.

    A dim of `event_shape` may be a scalar tensor (e.g. a requested audio length); a
    row's draws along the first axis then begin with the same values for any length.
    `salt` as for `per_row_normal`.
    """
    return _per_row(tf.random.stateless_uniform, seed, event_shape, salt, dtype)


# Evaluation batches per optimizer step with seeds of their own: 2**31 batches of one
# evaluation, up to 2**32 steps, within int64.
EVALUATION_BATCHES_PER_STEP = 1 << 31


def training_seed(noise_seed, step, draw, draws_per_step, evaluation_batch=0):
    """The stateless seed of training draw `draw` (0 .. draws_per_step-1) at optimizer
    step `step` on this replica: a run resumed from a checkpoint draws exactly the noise
    the uninterrupted run would have drawn, and replicas draw independently. Draw -1 is
    the evaluation draw of a `test_step`, from a stream of its own (negative counters)
    keyed by the step and `evaluation_batch`, the batch's index in its evaluation, so
    validation figures resume exactly too and each batch of an evaluation draws afresh."""
    replica = tf.distribute.get_replica_context()
    replica_id = tf.cast(replica.replica_id_in_sync_group if replica is not None else 0, tf.int64)
    step = tf.cast(step, tf.int64)
    if draw < 0:
        batch = tf.cast(evaluation_batch, tf.int64) % EVALUATION_BATCHES_PER_STEP
        counter = -1 - (step * EVALUATION_BATCHES_PER_STEP + batch)
    else:
        counter = step * draws_per_step + draw
    return tf.stack([noise_seed * 1_000_003 + replica_id, counter])
