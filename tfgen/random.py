"""Per-row stateless randomness, vectorized over the batch.

Every random draw in a signature is keyed by the row's own int64 seed, so the same seed
gives the same sample in any batch, in any process, before and after export.

Row b's draw is exactly `tf.random.stateless_uniform(event_shape, seed=[seed[b], salt])`
(respectively `stateless_normal`), the draw tfgen's exports have always made, one row at
a time in a `tf.map_fn`. TensorFlow has no stateless random op taking one key per row,
so the Philox-4x32-10 counter generator behind those ops (with the key scrambling of
`StatelessRandomGetKeyCounter` and the uint32 -> float conversions of TensorFlow's
`random_distributions.h`) is written here with element-wise integer ops on `[B, groups]`
tensors: one pass for the whole batch instead of one loop iteration per row.

- Uniforms are bit-for-bit the op's.
- Normals use TensorFlow's Box-Muller transform; its log, sin and cos are evaluated in
  float64 and rounded to float32, which gives the float32 library functions' results
  except, rarely, for a last-bit difference (tests/test_random.py measures it).

References: Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011;
tensorflow/core/lib/random/philox_random.h, random_distributions.h,
tensorflow/core/kernels/stateless_random_ops.cc (GenerateKey).
"""

import math

from tfgen.backend import tf

_MASK = 0xFFFFFFFF
_ROUND_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_KEY_INCREMENTS = (0x9E3779B9, 0xBB67AE85)
_SCRAMBLE_KEY = (0x3EC8F720, 0x02461E29)  # GenerateKey's fixed key for mixing the seed
_ROUNDS = 10
_WORDS = 4  # uint32 outputs per Philox call (one "group")
_BOX_MULLER_EPSILON = 1.0e-7


def _u64(value):
    return tf.constant(value, tf.uint64)


def _high(words):
    return tf.bitwise.right_shift(words, _u64(32))


def _round_keys(key):
    """The ten round keys of Philox for the key words `key` = (k0, k1) (Python ints, or
    uint64 `[..., 2]`), each in the order its round uses (see `_philox`)."""
    def order(pair, round_index):
        return pair[::-1] if round_index % 2 == 0 else pair

    offsets = [order((i * _KEY_INCREMENTS[0], i * _KEY_INCREMENTS[1]), i) for i in range(_ROUNDS)]
    if isinstance(key, tuple):
        return [_u64([(k + o) & _MASK for k, o in zip(order(key, i), offsets[i])])
                for i in range(_ROUNDS)]
    reverse = tf.reverse(key, [-1])
    stacked = tf.stack([reverse if i % 2 == 0 else key for i in range(_ROUNDS)], axis=-2)
    return tf.unstack((stacked + _u64(offsets)) & _u64(_MASK), axis=-2)


def _philox(x, y, key):
    """Philox-4x32-10 on 32-bit words held in uint64 tensors (products fit in 64 bits).

    The counter words (c0, c1, c2, c3) travel as two pairs in the last axis, x = (c0, c2)
    (the words multiplied) and y = (c1, c3), in natural order on even rounds and
    reversed on odd ones, which saves a shuffle: a round is six ops for the whole batch.

    Args:
      x, y: uint64 `[..., 2]`, the counter as above.
      key: (k0, k1) as Python ints, or uint64 `[..., 2]` broadcastable to `x`.
    Returns: `(x, y)` after ten rounds (natural order again): the output words
      (x[0], y[0], x[1], y[1]).
    """
    mask = _u64(_MASK)
    for round_index, round_key in enumerate(_round_keys(key)):
        multipliers = _ROUND_MULTIPLIERS if round_index % 2 == 0 else _ROUND_MULTIPLIERS[::-1]
        product = x * _u64(multipliers)
        # c0' = hi(c2 * M1) ^ c1 ^ k0, c2' = hi(c0 * M0) ^ c3 ^ k1, c1' = lo(c2 * M1),
        # c3' = lo(c0 * M0): in the other order, the products' own order.
        x, y = tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(_high(product), tf.reverse(y, [-1])),
                                      round_key), product & mask
    return x, y


def _row_keys(seed, salt):
    """Per-row Philox key (k0, k1) and counter words (c2, c3), uint64 `[B, 2]` each, for
    the seeds `[seed[b], salt[b]]` (`salt` an int, or int64 `[]` or `[B]`), as
    TensorFlow's GenerateKey makes them: the seed pair is the counter of one Philox call
    under a fixed key, whose output words are the key (words 0, 1) and the counter's
    upper half (words 2, 3)."""
    seed = tf.cast(seed, tf.int64)
    words = tf.bitcast(tf.stack([seed, tf.broadcast_to(tf.cast(salt, tf.int64), tf.shape(seed))],
                                axis=-1), tf.uint64)  # [B, 2]: (seed, salt)
    x, y = words & _u64(_MASK), _high(words)  # (c0, c2), (c1, c3)
    x, y = _philox(x, y, _SCRAMBLE_KEY)
    mix = tf.stack([x, y], axis=-1)  # [B, 2, 2]: (w0, w1), (w2, w3)
    return mix[:, 0], mix[:, 1]


def _per_row_words(seed, size, salt):
    """uint32 words `[B, 4 * ceil(size / 4)]`: row b is the stream the `stateless_*` ops
    draw from for seed `[seed[b], salt]`. Word i comes from the Philox call on the row's
    counter plus i // 4, so a longer draw begins with the same words. `size` may be a
    scalar tensor."""
    key, row_counter = _row_keys(seed, salt)
    groups = (size + _WORDS - 1) // _WORDS
    # Counter words 0, 1 start at 0 and count the group (a carry into word 2 would need
    # 2**64 groups); words 2, 3 are the row's.
    group = tf.cast(tf.range(groups, dtype=tf.int64), tf.uint64)[None, :]
    rows = tf.zeros_like(row_counter[:, :1])
    x = tf.stack([rows + (group & _u64(_MASK)), row_counter[:, :1] + tf.zeros_like(group)], axis=-1)
    y = tf.stack([rows + _high(group), row_counter[:, 1:] + tf.zeros_like(group)], axis=-1)
    x, y = _philox(x, y, key[:, None, :])
    words = tf.reshape(tf.stack([x, y], axis=-1), [tf.shape(seed)[0], -1])  # w0 w1 w2 w3 ...
    return tf.cast(words, tf.uint32)


def _unit_float(words):
    """TensorFlow's Uint32ToFloat: 23 random mantissa bits, a float32 in [0, 1)."""
    bits = tf.bitwise.bitwise_or(tf.bitwise.bitwise_and(words, tf.constant(0x7FFFFF, tf.uint32)),
                                 tf.constant(127 << 23, tf.uint32))
    return tf.bitcast(bits, tf.float32) - 1.0


def _event_size(event_shape):
    size = tf.constant(1, tf.int64)
    for dim in event_shape:
        size *= tf.cast(dim, tf.int64)
    return size


def _reshape_rows(flat, event_shape):
    static = [d if isinstance(d, int) else None for d in event_shape]
    shape = tf.stack([tf.shape(flat, out_type=tf.int64)[0]]
                     + [tf.cast(d, tf.int64) for d in event_shape]) if event_shape else tf.shape(flat)[:1]
    rows = tf.reshape(flat, shape)
    rows.set_shape([None] + static)
    return rows


def _check_dtype(dtype):
    if tf.as_dtype(dtype) != tf.float32:
        raise ValueError(f"per-row draws are float32, not {tf.as_dtype(dtype).name}")


def per_row_normal(seed, event_shape, salt=0, dtype=tf.float32):
    """Standard normal draws of shape `[B, *event_shape]`, row b keyed by `seed[b]`.

    Row b equals `tf.random.stateless_normal(event_shape, seed=[seed[b], salt])`.

    Args:
      seed: int64 `[B]`.
      event_shape: shape of one row (ints, or scalar tensors).
      salt: distinguishes independent streams drawn from the same seeds: an int, or
        int64 `[]` or `[B]` (one per row, e.g. a sampler's step when rows take different
        steps).
      dtype: float32 (the only one: the float32 Box-Muller transform is reproduced).
    """
    _check_dtype(dtype)
    event_shape = list(event_shape)
    size = _event_size(event_shape)
    words = _per_row_words(seed, size, salt)  # an even count: Box-Muller takes pairs
    u1 = tf.maximum(_unit_float(words[:, 0::2]), _BOX_MULLER_EPSILON)
    u2 = _unit_float(words[:, 1::2])
    # In float64, rounded to float32: TensorFlow computes `2.0f * M_PI * u` in double,
    # and logf / sincosf are (all but always) the correctly rounded results.
    angle = tf.cast(tf.constant(2.0 * math.pi, tf.float64) * tf.cast(u2, tf.float64), tf.float32)
    radius = tf.sqrt(-2.0 * tf.cast(tf.math.log(tf.cast(u1, tf.float64)), tf.float32))
    angle = tf.cast(angle, tf.float64)
    sine = tf.cast(tf.sin(angle), tf.float32) * radius
    cosine = tf.cast(tf.cos(angle), tf.float32) * radius
    flat = tf.reshape(tf.stack([sine, cosine], axis=-1), [tf.shape(seed)[0], -1])
    return _reshape_rows(flat[:, :size], event_shape)


def per_row_uniform(seed, event_shape, salt=0, dtype=tf.float32):
    """Uniform [0, 1) draws of shape `[B, *event_shape]`, row b keyed by `seed[b]`.

    Row b equals `tf.random.stateless_uniform(event_shape, seed=[seed[b], salt])`, bit
    for bit (`salt` as in `per_row_normal`). A dim of `event_shape` may be a scalar
    tensor (e.g. a requested audio length); a row's draws along the first axis then
    begin with the same values for any length.
    """
    _check_dtype(dtype)
    event_shape = list(event_shape)
    size = _event_size(event_shape)
    return _reshape_rows(_unit_float(_per_row_words(seed, size, salt)[:, :size]), event_shape)


def training_seed(noise_seed, step, draw, draws_per_step):
    """The stateless seed of training draw `draw` (0 .. draws_per_step-1) at optimizer
    step `step` on this replica: a run resumed from a checkpoint draws exactly the noise
    the uninterrupted run would have drawn, and replicas draw independently. Draw -1 is
    the evaluation draw of a `test_step`, from a stream of its own (negative counters),
    so validation figures resume exactly too."""
    replica = tf.distribute.get_replica_context()
    replica_id = tf.cast(replica.replica_id_in_sync_group if replica is not None else 0, tf.int64)
    step = tf.cast(step, tf.int64)
    counter = -1 - step if draw < 0 else step * draws_per_step + draw
    return tf.stack([noise_seed * 1_000_003 + replica_id, counter])
