"""Output distributions over a dataset's discrete levels, on `tfp.distributions`.

Shared by every family whose likelihood is on the integer levels `0 .. levels-1` of
`DataSpec` (VAE decoders, PixelCNN, a diffusion model's discrete decoder), so their
bits/dim compare directly with the flows' dequantized bound. Each builder takes the raw
output of a network, with the per-dimension parameters on the last axis, and returns a
distribution whose event is the data's event (`event_ndims` trailing axes), samples
float32 levels like the data, and bounds its scales so that no initial weights give a
NaN or an infinite log-probability.
"""

from tfgen.backend import tf, tfb, tfd
from tfgen.errors import UserError

# exp(-7) ~ 1e-3 of a level: sharper than any level spacing; exp(7) covers any range.
MIN_LOG_SCALE = -7.0
MAX_LOG_SCALE = 7.0


def bounded_scale(raw_log_scale):
    """A scale in [exp(MIN_LOG_SCALE), exp(MAX_LOG_SCALE)] with a gradient everywhere.

    A soft bound (scaled tanh) instead of a clip: a clipped log-scale has zero gradient
    outside its range, so an unlucky initialization could never recover.
    """
    half_range = (MAX_LOG_SCALE - MIN_LOG_SCALE) / 2.0
    centre = (MAX_LOG_SCALE + MIN_LOG_SCALE) / 2.0
    return tf.exp(centre + half_range * tf.tanh((raw_log_scale - centre) / half_range))


def inverse_bounded_scale(scale):
    """The raw log-scale `bounded_scale` maps to `scale` (clipped into its range)."""
    half_range = (MAX_LOG_SCALE - MIN_LOG_SCALE) / 2.0
    centre = (MAX_LOG_SCALE + MIN_LOG_SCALE) / 2.0
    ratio = (tf.math.log(tf.convert_to_tensor(scale, tf.float32)) - centre) / half_range
    return centre + half_range * tf.atanh(tf.clip_by_value(ratio, -1.0 + 1e-6, 1.0 - 1e-6))


def categorical(logits, event_ndims):
    """One softmax over the levels per dimension: `logits` is `[..., *event, levels]`."""
    return tfd.Independent(tfd.Categorical(logits=logits, dtype=tf.float32),
                           reinterpreted_batch_ndims=event_ndims)


def discretized_logistic_mixture(params, levels, num_components, event_ndims):
    """PixelCNN++'s discretized mixture of logistics (Salimans et al. 2017), per dimension.

    `params` is `[..., *event, 3 * num_components]`: mixture logits, raw locations and raw
    log-scales. Level `k` gets the logistic mass of `[k - 0.5, k + 0.5]`; the end levels
    take the tails, as in PixelCNN++. A raw location r sits at level
    `c + 2c tanh(r / 2)` (c the middle level; about `c + c r` near 0), softly bounded to
    [-c, 3c]: an unbounded location far out in a tail makes the two CDFs of a bin equal
    in float32 and its log-probability -inf, which no bounded scale prevents.
    """
    check_levels(levels)
    logits, raw_locs, raw_log_scales = tf.split(params, 3, axis=-1)
    loc, scale = _logistic_loc_scale(raw_locs, raw_log_scales, levels)
    logistic = tfd.Logistic(loc=loc, scale=scale)
    # Shift by -0.5 so that QuantizedDistribution's bins (k-1, k] become [k-0.5, k+0.5).
    shifted = tfd.TransformedDistribution(logistic, tfb.Shift(tf.constant(-0.5, params.dtype)))
    quantized = tfd.QuantizedDistribution(shifted, low=0.0, high=float(levels - 1))
    mixture = tfd.MixtureSameFamily(tfd.Categorical(logits=logits), quantized)
    return tfd.Independent(mixture, reinterpreted_batch_ndims=event_ndims)


def discretized_normal(loc, scale, levels, event_ndims):
    """A normal N(loc, scale^2) in level units, quantized to the levels: level k gets the
    mass of [k - 0.5, k + 0.5], the end levels the tails (a diffusion model's discrete
    decoder, Ho et al. 2020 eq. 13, on the levels instead of [-1, 1])."""
    check_levels(levels)
    shifted = tfd.TransformedDistribution(tfd.Normal(loc=loc, scale=scale), tfb.Shift(tf.constant(-0.5, loc.dtype)))
    quantized = tfd.QuantizedDistribution(shifted, low=0.0, high=float(levels - 1))
    return tfd.Independent(quantized, reinterpreted_batch_ndims=event_ndims)


def _logistic_loc_scale(raw_locs, raw_log_scales, levels):
    """Logistic locations in level units, softly bounded to [-c, 3c] around the middle
    level c (network output 0 is c; see `discretized_logistic_mixture`), and bounded
    scales."""
    centre = (levels - 1) / 2.0
    return centre + 2.0 * centre * tf.tanh(raw_locs / 2.0), bounded_scale(raw_log_scales)


def parameter_count(likelihood, levels, num_components=None):
    """Network outputs per data dimension that a likelihood on the levels needs."""
    check_levels(levels)
    if likelihood == "categorical":
        return levels
    if likelihood == "discretized_logistic_mixture":
        return 3 * int(num_components)
    raise UserError(f"unknown likelihood on levels {likelihood!r}; valid: {sorted(LIKELIHOODS)}")


def on_levels(likelihood, params, levels, event_ndims, num_components=None):
    """The distribution named `likelihood` (a key of LIKELIHOODS) from network outputs."""
    if likelihood == "categorical":
        return categorical(params, event_ndims)
    if likelihood == "discretized_logistic_mixture":
        return discretized_logistic_mixture(params, levels, int(num_components), event_ndims)
    raise UserError(f"unknown likelihood on levels {likelihood!r}; valid: {sorted(LIKELIHOODS)}")


LIKELIHOODS = {
    "categorical": "a softmax over the levels per dimension",
    "discretized_logistic_mixture": "PixelCNN++'s discretized mixture of logistics",
}


def log_prob_on_levels(likelihood, params, x, levels, event_ndims, num_components=None):
    """`on_levels(...).log_prob(x)`, with the categorical case as TensorFlow's fused
    softmax cross-entropy: the same numbers without TFP's broadcasting and dtype checks,
    which cost a measurable share of a small model's training step (bench/vae.py)."""
    if likelihood == "categorical":
        labels = tf.cast(x, tf.int32)
        log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=params)
        return tf.reduce_sum(log_probs, axis=list(range(-event_ndims, 0)))
    return on_levels(likelihood, params, levels, event_ndims, num_components).log_prob(x)


def level_log_probabilities(dist, levels):
    """`[..., *event, levels]`: each dimension's log-probability of every level, from a
    distribution built here (the per-dimension marginals of its `Independent`)."""
    per_dimension = dist.distribution
    rank = len(per_dimension.batch_shape)
    # [levels, 1, ..., 1] broadcasts against the batch shape: one log_prob per level.
    values = tf.reshape(tf.range(levels, dtype=tf.float32), [levels] + [1] * rank)
    log_probs = per_dimension.log_prob(values)
    return tf.transpose(log_probs, list(range(1, rank + 1)) + [0])


def mode_on_levels(dist, levels):
    """The most probable level of every dimension (float32, like the data)."""
    return tf.cast(tf.argmax(level_log_probabilities(dist, levels), axis=-1), tf.float32)


def check_levels(levels):
    if levels is None or int(levels) < 2:
        raise UserError(f"a likelihood on levels needs discrete data (levels >= 2), got levels={levels}")


# === Draws from given uniforms ===
# Autoregressive samplers draw one dimension at a time from uniforms drawn up front per
# row (`tfgen.random.per_row_uniform`), so a naive and a cached sampler given the same
# seed draw the same values, and any batch gives each row the same sample.

#: Uniforms one draw on the levels consumes, per dimension.
UNIFORMS_PER_DRAW = 2
_MIN_TEMPERATURE = 1e-6


def _inverse_cdf(logits, uniform):
    """The index k with cdf(k-1) <= u < cdf(k) of softmax(logits) (last axis)."""
    cdf = tf.cumsum(tf.nn.softmax(logits, axis=-1), axis=-1)
    index = tf.reduce_sum(tf.cast(cdf < uniform[..., None], tf.int32), axis=-1)
    return tf.minimum(index, logits.shape[-1] - 1)


def draw_on_levels(likelihood, params, levels, uniforms, temperature=1.0, num_components=None):
    """One draw per dimension of the likelihood `on_levels` builds from `params`.

    Args:
      likelihood: a key of LIKELIHOODS.
      params: `[..., parameter_count]` network outputs of the dimensions drawn.
      levels: the data's levels.
      uniforms: `[..., UNIFORMS_PER_DRAW]` uniforms in [0, 1), one set per dimension.
      temperature: broadcastable to `params.shape[:-1]`. Categorical: the logits are
        divided by it; mixture: the component logits are divided by it and the
        logistic scales multiplied by it. 1 draws from the model; towards 0 the draw
        approaches the mode.

    Returns:
      float32 levels `params.shape[:-1]`.
    """
    temperature = tf.maximum(tf.cast(temperature, params.dtype), _MIN_TEMPERATURE)
    if likelihood == "categorical":
        check_levels(levels)
        return tf.cast(_inverse_cdf(params / temperature[..., None], uniforms[..., 0]), tf.float32)
    if likelihood != "discretized_logistic_mixture":
        raise UserError(f"unknown likelihood on levels {likelihood!r}; valid: {sorted(LIKELIHOODS)}")
    check_levels(levels)
    logits, locs, raw_log_scales = tf.split(params, 3, axis=-1)
    component = tf.one_hot(_inverse_cdf(logits / temperature[..., None], uniforms[..., 0]),
                           int(num_components), dtype=params.dtype)
    loc, scale = _logistic_loc_scale(locs, raw_log_scales, levels)
    loc = tf.reduce_sum(component * loc, axis=-1)
    scale = tf.reduce_sum(component * scale, axis=-1) * temperature
    u = tf.clip_by_value(uniforms[..., 1], 1e-5, 1.0 - 1e-5)
    x = loc + scale * (tf.math.log(u) - tf.math.log1p(-u))
    return tf.clip_by_value(tf.round(x), 0.0, float(levels - 1))
