"""evaluate_bits_per_dim against models whose dequantization bound is known analytically."""

import math

import numpy as np
import pytest

from tfgen.backend import tf
from tfgen.data import DataSpec, Split
from tfgen.models import dequantization
from tfgen.metrics.bits import evaluate_bits_per_dim
from tfgen.models.base import GenerativeModel


class PowerCube(GenerativeModel):
    """Density p(u) = prod_i (a + 1) u_i^a on the unit cube, dequantizing discrete x.

    a = 0 is the uniform density. For x + U with U ~ U[0, 1),
    E[log(x + U)] = (x + 1) log(x + 1) - x log x - 1, so the expected bound is known.
    """

    def __init__(self, data_spec, power=0.0, **kwargs):
        super().__init__(data_spec, **kwargs)
        self.power = float(power)

    def _unit_log_prob(self, u):
        d = self.data_spec.num_dims
        log_u = tf.reshape(tf.math.log(u), [tf.shape(u)[0], d])
        return d * math.log(self.power + 1) + self.power * tf.reduce_sum(log_u, axis=1)

    def log_prob(self, x, condition=None):
        return self.training_log_prob(x, condition)

    def training_log_prob(self, x, condition=None, training=True, seed=None):
        spec = self.data_spec
        noise = tf.random.uniform(tf.shape(x))
        u = dequantization.dequantize(x, spec.levels, noise)
        return dequantization.discrete_log_prob(self._unit_log_prob(u), spec.num_dims, spec.levels)


def _expected_bits(x, levels, power):
    x = np.asarray(x, np.float64)
    e_log = (x + 1) * np.log(x + 1) - np.where(x > 0, x * np.log(np.maximum(x, 1)), 0.0) - 1 - np.log(levels)
    log_prob = np.log(power + 1) + power * e_log - np.log(levels)  # per dimension
    return float(-log_prob.mean() / math.log(2))


SPEC = DataSpec((3, 2), levels=8)
SPLIT = Split(np.random.default_rng(0).integers(0, 8, size=(300, 3, 2)).astype(np.float32))


def test_uniform_density_gives_log2_levels():
    result = evaluate_bits_per_dim(PowerCube(SPEC), SPLIT, SPEC, batch_size=64, num_noise_samples=2)
    assert result["bits_per_dim"] == pytest.approx(3.0, abs=1e-5)
    assert result["num_examples"] == 300 and result["num_noise_samples"] == 2


def test_noise_averaging_converges_to_the_analytic_bound_and_is_seeded():
    model = PowerCube(SPEC, power=1.0)
    expected = _expected_bits(SPLIT.x, 8, 1.0)
    one = evaluate_bits_per_dim(model, SPLIT, SPEC, batch_size=128, num_noise_samples=1, seed=3)
    many = evaluate_bits_per_dim(model, SPLIT, SPEC, batch_size=128, num_noise_samples=32, seed=3)
    again = evaluate_bits_per_dim(model, SPLIT, SPEC, batch_size=128, num_noise_samples=32, seed=3)
    assert many["bits_per_dim"] == pytest.approx(again["bits_per_dim"], abs=1e-6)  # float32 sums may reorder
    assert abs(many["bits_per_dim"] - expected) < 0.01
    assert many["bits_per_dim_stderr"] < one["bits_per_dim_stderr"]


def test_conditional_spec_feeds_labels():
    spec = DataSpec((3, 2), levels=8, num_classes=2)
    split = Split(SPLIT.x, np.zeros(300, np.int32))
    assert evaluate_bits_per_dim(PowerCube(spec), split, spec, batch_size=100)["bits_per_dim"] == pytest.approx(3.0)


def test_non_finite_log_prob_is_an_error():
    x = SPLIT.x.copy()
    x[5] = -1.0  # u < 0: log of a negative number
    with pytest.raises(ValueError, match=r"non-finite log_prob value\(s\), first at example 5"):
        evaluate_bits_per_dim(PowerCube(SPEC, power=1.0), Split(x), SPEC, batch_size=64)
