"""Likelihoods on a dataset's discrete levels (tfgen.distributions)."""

import numpy as np
import pytest

from tfgen import distributions
from tfgen.backend import tf
from tfgen.errors import UserError

LEVELS = 5


def every_level():
    return tf.reshape(tf.range(LEVELS, dtype=tf.float32), [LEVELS, 1])


@pytest.mark.parametrize("likelihood,components", [("categorical", None),
                                                   ("discretized_logistic_mixture", 3)])
def test_probabilities_over_the_levels_sum_to_one(likelihood, components):
    count = distributions.parameter_count(likelihood, LEVELS, components)
    params = tf.random.stateless_normal([1, 1, count], seed=[1, 2]) * 3.0
    dist = distributions.on_levels(likelihood, tf.repeat(params, LEVELS, axis=0), LEVELS,
                                   event_ndims=1, num_components=components)
    probabilities = np.exp(dist.log_prob(every_level()).numpy())
    np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-5)
    samples = dist.sample(seed=[3, 4]).numpy()
    assert set(np.unique(samples)) <= set(range(LEVELS))


def test_one_logistic_matches_the_hand_computed_masses():
    loc_level, scale = 1.3, 0.8
    centre = (LEVELS - 1) / 2.0
    raw_log_scale = 7.0 * np.arctanh(np.log(scale) / 7.0)  # inverts bounded_scale (centre 0, half-range 7)
    raw_loc = 2.0 * np.arctanh((loc_level - centre) / (2.0 * centre))  # inverts the soft bound
    params = tf.constant([[[0.0, raw_loc, raw_log_scale]]], tf.float32)
    dist = distributions.discretized_logistic_mixture(tf.repeat(params, LEVELS, axis=0), LEVELS, 1, 1)

    def cdf(v):
        return 1.0 / (1.0 + np.exp(-(v - loc_level) / scale))

    edges = [-np.inf] + [k + 0.5 for k in range(LEVELS - 1)] + [np.inf]
    expected = [cdf(hi) - cdf(lo) for lo, hi in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(np.exp(dist.log_prob(every_level()).numpy()), expected, rtol=1e-4)


@pytest.mark.parametrize("likelihood,components", [("categorical", None),
                                                   ("discretized_logistic_mixture", 2)])
def test_extreme_parameters_give_finite_log_probs_and_gradients(likelihood, components):
    count = distributions.parameter_count(likelihood, LEVELS, components)
    params = tf.Variable(tf.constant([[-1e4] * count, [1e4] * count], tf.float32)[:, None, :])
    x = tf.constant([[0.0], [LEVELS - 1.0]])
    with tf.GradientTape() as tape:
        log_prob = distributions.on_levels(likelihood, params, LEVELS, 1, components).log_prob(x)
    gradient = tape.gradient(log_prob, params)
    assert np.all(np.isfinite(log_prob.numpy())), log_prob.numpy()
    assert np.all(np.isfinite(gradient.numpy()))


def test_unknown_likelihood_names_the_valid_ones():
    with pytest.raises(UserError, match="categorical.*discretized_logistic_mixture"):
        distributions.parameter_count("gaussian", LEVELS)
    with pytest.raises(UserError, match="levels >= 2"):
        distributions.parameter_count("categorical", None)


@pytest.mark.parametrize("likelihood,components", [("categorical", None),
                                                   ("discretized_logistic_mixture", 2)])
def test_modes_are_the_most_probable_levels(likelihood, components):
    count = distributions.parameter_count(likelihood, LEVELS, components)
    params = tf.random.stateless_normal([4, 3, count], seed=[5, 6]) * 2.0
    dist = distributions.on_levels(likelihood, params, LEVELS, 1, components)
    probabilities = np.exp(distributions.level_log_probabilities(dist, LEVELS).numpy())  # [4, 3, LEVELS]
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(distributions.mode_on_levels(dist, LEVELS).numpy(), probabilities.argmax(-1))


@pytest.mark.parametrize("likelihood,components", [("categorical", None),
                                                   ("discretized_logistic_mixture", 2)])
def test_log_prob_on_levels_equals_the_distribution_s(likelihood, components):
    count = distributions.parameter_count(likelihood, LEVELS, components)
    params = tf.random.stateless_normal([6, 2, 3, count], seed=[9, 10]) * 3.0
    x = tf.cast(tf.random.stateless_uniform([6, 2, 3], seed=[11, 12], maxval=LEVELS, dtype=tf.int32), tf.float32)
    expected = distributions.on_levels(likelihood, params, LEVELS, 2, components).log_prob(x)
    got = distributions.log_prob_on_levels(likelihood, params, x, LEVELS, 2, components)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


# === Draws from given uniforms (the autoregressive samplers') ===

@pytest.mark.parametrize("likelihood,params", [
    ("categorical", [0.5, -1.0, 2.0, 0.0, 1.0]),
    ("discretized_logistic_mixture", [0.3, -0.2, -0.5, 0.4, 0.1, -1.0]),  # 2 components
])
def test_draws_from_uniforms_follow_the_distribution(likelihood, params):
    levels, n = 5, 20000
    params = tf.constant([params], tf.float32)
    uniforms = tf.random.stateless_uniform([n, 2], seed=[4, 2])
    draws = distributions.draw_on_levels(likelihood, tf.tile(params, [n, 1]), levels, uniforms, 1.0, num_components=2).numpy()
    assert set(np.unique(draws)) <= set(range(levels))
    expected = np.exp(distributions.on_levels(likelihood, params, levels, event_ndims=0, num_components=2)
                      .log_prob(tf.range(levels, dtype=tf.float32)[:, None]).numpy()[:, 0])
    frequencies = np.bincount(draws.astype(int), minlength=levels) / n
    np.testing.assert_allclose(frequencies, expected, atol=0.015)
    # Towards temperature 0 every draw is the most likely level.
    cold = distributions.draw_on_levels(likelihood, tf.tile(params, [n, 1]), levels, uniforms, 1e-4, num_components=2).numpy()
    assert len(np.unique(cold)) == 1 and (likelihood != "categorical" or cold[0] == 2)
