"""The shipped class-conditional digits PixelCNN: exact held-out bits/dim below the best
shipped flow, recomputed from the file; the exported cached sampler draws what the
trained network's naive sampler draws; the trained network is causal; samples look like
their class."""

import numpy as np
import pytest
from shipped import newest, rebuilt
from test_pixel_cnn import assert_causal_without_blind_spot

from tfgen.backend import tf
from tfgen.data.datasets import load_dataset
from tfgen.export.reader import read_metadata
from tfgen.metrics.bits import bits_per_dim

NAME = "digits_conditional_pixel_cnn"
BEST_SHIPPED_FLOW = 2.031  # digits_realnvp / digits_conditional_glow, README table


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"name": "digits", "conditional": True, "seed": 0})


@pytest.fixture(scope="module")
def export():
    path = newest(NAME)
    return path, tf.saved_model.load(path), rebuilt(path)


def test_exact_held_out_bits_per_dim_beat_the_best_shipped_flow(digits, export):
    path, loaded, _ = export
    meta = read_metadata(path)
    assert meta["log_prob_kind"] == "exact" and meta["metrics"]["split"] == "test"
    assert meta["metrics"]["bits_per_dim"] < BEST_SHIPPED_FLOW
    test = digits.splits["test"]
    log_prob = loaded.signatures["log_prob"](x=tf.constant(test.x), condition=tf.constant(test.y))["log_prob"]
    recomputed = float(np.mean(bits_per_dim(log_prob.numpy(), digits.spec.num_dims)))
    # Exact on the levels: the file gives the reported figure itself, not a bound of it.
    assert abs(recomputed - meta["metrics"]["bits_per_dim"]) < 1e-4, recomputed


def test_exported_cached_sampler_draws_what_the_trained_naive_sampler_draws(export):
    _, loaded, model = export
    seeds = tf.constant([0, 1, 2, 3, 4, 5], tf.int64)
    condition = tf.constant([0, 1, 2, 7, 8, 9], tf.int32)
    temperature = tf.constant([1.0, 1.0, 0.8, 1.0, 0.6, 1.0])
    served = loaded.signatures["sample"](seed=seeds, temperature=temperature, condition=condition)
    naive = tf.function(model.sample_naive, autograph=False)(seeds, temperature, condition)
    np.testing.assert_array_equal(served["samples"].numpy(), naive.numpy())
    # The samples round-trip into log_prob (the signature's own output) as the model scores them.
    np.testing.assert_allclose(served["log_prob"].numpy(), model.log_prob(naive, condition).numpy(),
                               rtol=1e-5, atol=1e-4)


def test_trained_network_is_causal_without_a_blind_spot(digits, export):
    _, _, model = export
    test = digits.splits["test"]
    assert_causal_without_blind_spot(model, test.x[0], tf.constant(test.y[:1]))
