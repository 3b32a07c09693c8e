"""Held-out bits/dim of a tfgen model, averaged over dequantization noise.

For discrete data a flow's per-example objective is the dequantization bound
(`tfgen.models.dequantization`)

    log P(x) >= E_noise[ log p_u((x + noise) / L) ] - D log L,

which `model.training_log_prob(x, condition, training=False)` estimates with one
uniform noise draw. Averaging K draws per example gives a lower-variance estimate of the
same bound (not the tighter importance-weighted one), and

    bits/dim = -mean_x mean_k log P_k(x) / (D ln 2).

For continuous data and models without dequantization every draw is the same.
"""

import math

import numpy as np

from tfgen.backend import tf
from tfgen.data.datasets import to_tf_dataset
from tfgen.errors import UserError


def bits_per_dim(log_prob, num_dims):
    """-log_prob / (D ln 2): nats per example to bits per dimension."""
    return -log_prob / (num_dims * math.log(2.0))


def evaluate_bits_per_dim(model, split, spec, batch_size=256, num_noise_samples=1, seed=0, log_prob_fn=None):
    """Mean held-out bits/dim of `model` on `split`.

    Args:
      model: a `tfgen.models.base.GenerativeModel`.
      split: a `tfgen.data.Split` (e.g. `dataset.splits["test"]`).
      spec: the dataset's `DataSpec`; conditional specs feed `(x, y)`.
      batch_size: examples per call.
      num_noise_samples: K dequantization draws averaged per example.
      seed: seeds TensorFlow's global random state (`tf.random.set_seed`), which the
        model's dequantization noise draws from, so the figure is reproducible.
      log_prob_fn: `(x, condition) -> [B]` nats to average instead of
        `model.training_log_prob(x, condition, training=False)` (e.g. a VAE's
        importance-weighted bound).

    Returns:
      {"bits_per_dim", "bits_per_dim_stderr" (over examples), "log_prob" (mean nats),
       "num_examples", "num_noise_samples"}.

    Raises:
      ValueError: if the model returns NaN/Inf for any example (names the count and the
        first example index), or `num_noise_samples` < 1.
    """
    if num_noise_samples < 1:
        raise UserError(f"num_noise_samples must be >= 1, got {num_noise_samples}")
    tf.random.set_seed(seed)
    if log_prob_fn is None:
        def log_prob_fn(x, condition):
            return model.training_log_prob(x, condition, training=False)

    # No autograph: it would re-read this file's source while tracing.
    @tf.function(reduce_retracing=True, autograph=False)
    def mean_log_prob(x, condition):
        def add_draw(i, total):  # a graph loop: the model is traced once
            return i + 1, total + log_prob_fn(x, condition)

        start = (tf.constant(0), tf.zeros(tf.shape(x)[:1]))
        _, total = tf.while_loop(lambda i, _: i < num_noise_samples, add_draw, start)
        return total / num_noise_samples

    log_probs = []
    for batch in to_tf_dataset(split, spec, batch_size, shuffle=False):
        x, condition = batch if spec.conditional else (batch, None)
        log_probs.append(mean_log_prob(x, condition).numpy())
    log_prob = np.concatenate(log_probs).astype(np.float64)
    bad = ~np.isfinite(log_prob)
    if bad.any():
        raise UserError(
            f"model returned {int(bad.sum())} non-finite log_prob value(s), first at example {int(np.argmax(bad))}"
        )
    per_example = np.asarray(bits_per_dim(log_prob, spec.num_dims))
    return {
        "bits_per_dim": float(per_example.mean()),
        "bits_per_dim_stderr": float(per_example.std() / math.sqrt(len(per_example))),
        "log_prob": float(log_prob.mean()),
        "num_examples": int(len(log_prob)),
        "num_noise_samples": int(num_noise_samples),
    }
