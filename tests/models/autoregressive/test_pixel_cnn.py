"""Gated PixelCNN: exact likelihood on the levels, causality, cached == naive sampling."""

import itertools

import numpy as np
import pytest
from zoo import perturb_weights

from tfgen.backend import keras, tf
from tfgen.errors import UserError
from tfgen.models.autoregressive import GatedPixelCNN

GREY = {"event_shape": [4, 5, 1], "kind": "image", "levels": 17, "num_classes": 3}
COLOUR = {"event_shape": [3, 4, 3], "kind": "image", "levels": 256}


def random_model(spec, likelihood="categorical", seed=0, scale=0.3, **kwargs):
    """A small PixelCNN with random (perturbed) weights."""
    kwargs = {"num_layers": 3, "filters": 6, "head_units": 6, "num_components": 3, **kwargs}
    keras.utils.set_random_seed(seed)  # initial weights too: the test is the same every run
    model = GatedPixelCNN(spec, likelihood=likelihood, **kwargs)
    condition = tf.zeros([1], tf.int32) if "num_classes" in spec else None
    model.log_prob(tf.zeros([1, *spec["event_shape"]]), condition)
    return perturb_weights(model, seed, scale)


def conditions(spec, batch):
    return tf.constant(np.arange(batch) % spec["num_classes"], tf.int32) if "num_classes" in spec else None


@pytest.mark.parametrize("spec,likelihood", [(GREY, "categorical"), (COLOUR, "discretized_logistic_mixture")])
def test_cached_sampler_draws_exactly_what_the_naive_one_draws(spec, likelihood):
    model = random_model(spec, likelihood)
    seeds = tf.constant([3, 11, 12, 40], tf.int64)
    temperature = tf.constant([1.0, 1.0, 0.6, 1.5])
    condition = conditions(spec, 4)
    cached = tf.function(model.sample, autograph=False)(seeds, temperature, condition).numpy()
    naive = tf.function(model.sample_naive, autograph=False)(seeds, temperature, condition).numpy()
    np.testing.assert_array_equal(cached, naive)
    # Samples are on the levels and vary between seeds.
    assert np.all(cached == np.round(cached)) and cached.min() >= 0 and cached.max() <= spec["levels"] - 1
    assert not np.array_equal(cached[0], cached[1])
    # They round-trip into log_prob.
    assert np.all(np.isfinite(model.log_prob(cached, condition).numpy()))


def dependence_matrix(model, x, condition=None):
    """`[D, D]` bool: entry (d, e) says the parameters of dimension d (raster order,
    channels innermost) depend on input dimension e."""
    x = tf.constant(x[None])
    num_dims = int(np.prod(x.shape[1:]))
    with tf.GradientTape() as tape:
        tape.watch(x)
        params = tf.reshape(model.parameters(x, condition), [num_dims, -1])
        summed = tf.reduce_sum(params * tf.random.stateless_normal(params.shape, [1, 2]), axis=1)
    jacobian = tape.jacobian(summed, x)
    return np.reshape(jacobian.numpy(), [num_dims, num_dims]) != 0


def assert_causal_without_blind_spot(model, x, condition=None):
    height, width, channels = x.shape
    seen = dependence_matrix(model, x, condition)
    # Nothing depends on itself or on a later dimension.
    assert not np.triu(seen).any()
    # The pixel above and to the right is seen (the original PixelCNN's blind spot),
    # and within a pixel the later channels see the earlier ones.
    index = lambda r, c, j=0: (r * width + c) * channels + j  # noqa: E731
    assert seen[index(1, 1), index(0, 2)]
    assert seen[index(1, 1), index(1, 0)]
    if channels > 1:
        assert seen[index(1, 1, 2), index(1, 1, 0)] and seen[index(1, 1, 2), index(1, 1, 1)]


@pytest.mark.parametrize("spec", [GREY, COLOUR])
def test_random_network_is_causal_without_a_blind_spot(spec):
    # Wide enough that no ReLU path is dead at initialization.
    model = random_model(spec, "categorical" if spec is GREY else "discretized_logistic_mixture", scale=0.0,
                         filters=12, head_units=24)
    x = np.random.default_rng(0).integers(0, spec["levels"], size=spec["event_shape"]).astype(np.float32)
    assert_causal_without_blind_spot(model, x, conditions(spec, 1))


@pytest.mark.parametrize("likelihood", ["categorical", "discretized_logistic_mixture"])
def test_log_prob_is_exact_on_the_levels(likelihood):
    # Every image of a 2x2 grey image with 3 levels: the probabilities sum to one.
    spec = {"event_shape": [2, 2, 1], "kind": "image", "levels": 3}
    model = random_model(spec, likelihood, scale=0.5, num_layers=2)
    images = np.array(list(itertools.product(range(3), repeat=4)), np.float32).reshape([-1, 2, 2, 1])
    total = np.exp(model.log_prob(images).numpy().astype(np.float64)).sum()
    assert abs(total - 1.0) < 1e-4


def test_colour_log_prob_is_exact_on_the_levels():
    spec = {"event_shape": [1, 2, 2], "kind": "image", "levels": 3}
    model = random_model(spec, "categorical", scale=0.5, num_layers=2, filters=4, head_units=4)
    images = np.array(list(itertools.product(range(3), repeat=4)), np.float32).reshape([-1, 1, 2, 2])
    assert abs(np.exp(model.log_prob(images).numpy().astype(np.float64)).sum() - 1.0) < 1e-4


def test_the_condition_changes_the_samples():
    model = random_model(GREY, scale=0.5)
    seeds = tf.constant([5, 5, 5], tf.int64)
    samples = model.sample(seeds, 1.0, tf.constant([0, 1, 2])).numpy()
    assert not np.array_equal(samples[0], samples[1]) and not np.array_equal(samples[1], samples[2])


@pytest.mark.parametrize("spec,kwargs,match", [
    ({"event_shape": [4], "kind": "vector", "levels": 4}, {}, "images"),
    ({"event_shape": [4, 4, 1], "kind": "image"}, {}, "levels"),
    ({"event_shape": [4, 4, 3], "kind": "image", "levels": 4}, {"filters": 8}, "multiples"),
    ({"event_shape": [4, 4, 1], "kind": "image", "levels": 4}, {"kernel_size": 2}, "kernel_size"),
    ({"event_shape": [4, 4, 1], "kind": "image", "levels": 4}, {"likelihood": "gaussian"}, "likelihood"),
])
def test_bad_configuration_is_a_clear_error(spec, kwargs, match):
    with pytest.raises(UserError, match=match):
        GatedPixelCNN(spec, **kwargs)
