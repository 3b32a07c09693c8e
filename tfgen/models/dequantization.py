"""Uniform dequantization of discrete data, so a continuous density (flows, pPCA) compares with discrete models.

Discrete data x in {0, ..., L-1}^D is mapped to the unit cube, u = (x + noise) / L with
noise ~ U[0, 1)^D. A density p_u on the cube gives a lower bound on the discrete
probability (Theis et al. 2016, arXiv:1511.01844):

    log P(x) >= E_noise[ log p_u((x + noise) / L) ] - D log L

so bits/dim = -(log p_u(u) - D log L) / (D ln 2), comparable across flows and
autoregressive models on the same data.
"""

import math

from tfgen.backend import tf


def dequantize(x, levels, noise):
    """Maps integer-valued `x` in [0, levels) to the unit cube; `noise` in [0, 1)."""
    return (tf.cast(x, tf.float32) + noise) / float(levels)


def bin_centres(x, levels):
    """Deterministic dequantization at the centre of each bin (used by `log_prob`)."""
    return (tf.cast(x, tf.float32) + 0.5) / float(levels)


def quantize(u, levels):
    """Inverse of `dequantize`: unit-cube values back to integers 0 .. levels-1 (float32)."""
    return tf.clip_by_value(tf.floor(u * float(levels)), 0.0, float(levels - 1))


def discrete_log_prob(unit_log_prob, num_dims, levels):
    """log P(x) from the log density of its dequantized point in the unit cube."""
    return unit_log_prob - num_dims * math.log(levels)

