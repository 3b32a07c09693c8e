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


def _philox(counter, key):
    """Philox-4x32-10 on 32-bit words held in uint64 tensors of one shape.

    Args:
      counter: 4 tensors, the counter words (low first).
      key: 2 tensors, the key words, broadcastable to the counter's shape.
    Returns: the 4 output words.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    mask = _u64(_MASK)
    for round_index in range(_ROUNDS):
        if round_index:
            k0 = (k0 + _u64(_KEY_INCREMENTS[0])) & mask
            k1 = (k1 + _u64(_KEY_INCREMENTS[1])) & mask
        product0 = c0 * _u64(_ROUND_MULTIPLIERS[0])  # < 2**64: exact in uint64
        product1 = c2 * _u64(_ROUND_MULTIPLIERS[1])
        c0, c1, c2, c3 = (
            tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(_high(product1), c1), k0),
            product1 & mask,
            tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(_high(product0), c3), k1),
            product0 & mask,
        )
    return c0, c1, c2, c3


def _row_keys(seed, salt):
    """Per-row Philox key and counter words for the seeds `[seed[b], salt]`, as
    TensorFlow's GenerateKey makes them: the seed pair is the counter of one Philox call
    under a fixed key, whose output becomes key (words 0, 1) and counter (words 2, 3)."""
    words = tf.bitcast(tf.cast(seed, tf.int64), tf.uint64)
    mask = _u64(_MASK)
    salt_word = int(salt) & 0xFFFFFFFFFFFFFFFF
    counter = (words & mask, _high(words),
               tf.fill(tf.shape(words), _u64(salt_word & _MASK)),
               tf.fill(tf.shape(words), _u64(salt_word >> 32)))
    mix = _philox(counter, (_u64(_SCRAMBLE_KEY[0]), _u64(_SCRAMBLE_KEY[1])))
    return (mix[0], mix[1]), (mix[2], mix[3])


def _per_row_words(seed, size, salt):
    """uint32 words `[B, 4 * ceil(size / 4)]`: row b is the stream the `stateless_*` ops
    draw from for seed `[seed[b], salt]`. Word i comes from the Philox call on the row's
    counter plus i // 4, so a longer draw begins with the same words. `size` may be a
    scalar tensor."""
    (k0, k1), (c2, c3) = _row_keys(seed, salt)
    groups = (size + _WORDS - 1) // _WORDS
    # Counter words 0, 1 start at 0 and count the group (a carry into word 2 would need
    # 2**64 groups); words 2, 3 are the row's.
    group = tf.cast(tf.range(groups, dtype=tf.int64), tf.uint64)[None, :]
    zeros = tf.zeros_like(group)
    mask = _u64(_MASK)
    counter = (group & mask, _high(group), c2[:, None] + zeros, c3[:, None] + zeros)
    out = _philox(counter, (k0[:, None], k1[:, None]))
    return tf.cast(tf.reshape(tf.stack(out, axis=-1), [tf.shape(seed)[0], -1]), tf.uint32)


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
      salt: distinguishes independent streams drawn from the same seeds.
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
    for bit. A dim of `event_shape` may be a scalar tensor (e.g. a requested audio
    length); a row's draws along the first axis then begin with the same values for any
    length.
    """
    _check_dtype(dtype)
    event_shape = list(event_shape)
    size = _event_size(event_shape)
    return _reshape_rows(_unit_float(_per_row_words(seed, size, salt)[:, :size]), event_shape)
