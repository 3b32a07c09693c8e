"""WaveNet: exact likelihood on the levels, causality within the receptive field, cached
(queue) sampling == naive sampling, the length input and its cap."""

import itertools

import numpy as np
import pytest
from zoo import perturb_weights

from tfgen.backend import keras, tf
from tfgen.errors import UserError
from tfgen.models.autoregressive import WaveNet

SPEC = {"event_shape": [40, 1], "kind": "audio", "levels": 32, "sample_rate": 8000, "num_classes": 3}


def random_model(spec=SPEC, seed=0, scale=0.3, **kwargs):
    kwargs = {"residual_channels": 6, "skip_channels": 6, "layers_per_stack": 3, "num_stacks": 2,
              "kernel_size": 3, "condition_dim": 4, "max_length": 120, **kwargs}
    keras.utils.set_random_seed(seed)  # initial weights too: the test is the same every run
    model = WaveNet(spec, **kwargs)
    condition = tf.zeros([1], tf.int32) if "num_classes" in spec else None
    model.log_prob(tf.zeros([1, *spec["event_shape"]]), condition)
    return perturb_weights(model, seed, scale)


def test_cached_sampler_draws_exactly_what_the_naive_one_draws():
    model = random_model()
    seeds = tf.constant([3, 11, 12, 40], tf.int64)
    temperature = tf.constant([1.0, 1.0, 0.6, 1.5])
    condition = tf.constant([0, 1, 2, 0], tf.int32)
    cached = tf.function(model.sample, autograph=False)(seeds, temperature, condition).numpy()
    naive = tf.function(model.sample_naive, autograph=False)(seeds, temperature, condition).numpy()
    assert cached.shape == (4, 40, 1)
    np.testing.assert_array_equal(cached, naive)
    assert not np.array_equal(cached[0], cached[1])
    assert np.all(np.isfinite(model.log_prob(cached, condition).numpy()))


def test_length_input_default_prefix_and_cap():
    model = random_model()
    seeds = tf.constant([5, 6], tf.int64)
    condition = tf.constant([1, 2], tf.int32)
    sample = tf.function(model.sample, autograph=False)
    default = sample(seeds, 1.0, condition, length=tf.constant([0, 0])).numpy()
    assert default.shape == (2, 40, 1)
    # The batch takes its longest row's length; a longer sample begins with the shorter one.
    longer = sample(seeds, 1.0, condition, length=tf.constant([100, 0])).numpy()
    assert longer.shape == (2, 100, 1)
    np.testing.assert_array_equal(longer[:, :40], default)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 120 samples"):
        sample(seeds, 1.0, condition, length=tf.constant([121, 0]))


def test_output_depends_on_exactly_the_past_receptive_field():
    model = random_model(scale=0.0, num_stacks=1)  # dilations 1, 2, 4 with 3 taps: 15 samples
    assert model.receptive_field == 15
    x = tf.constant(np.random.default_rng(0).integers(0, 32, size=[1, 40, 1]).astype(np.float32))
    # Logits are a function of the (embedded) inputs: perturb one input sample at a time.
    base = model.logits(x, tf.constant([0])).numpy()[0]
    t = 30
    moved = np.repeat(x.numpy(), 40, axis=0)  # row s changes sample s
    moved[np.arange(40), np.arange(40), 0] = (moved[np.arange(40), np.arange(40), 0] + 7) % 32
    logits = model.logits(moved, tf.zeros([40], tf.int32)).numpy()[:, t]
    changed = [not np.allclose(row, base[t]) for row in logits]
    # Step t sees x[t - 15 .. t - 1]: the past within the receptive field, nothing later.
    assert np.flatnonzero(changed).tolist() == list(range(t - 15, t))


def test_log_prob_is_exact_on_the_levels():
    spec = {"event_shape": [3, 1], "kind": "audio", "levels": 4, "num_classes": 2}
    model = random_model(spec, scale=0.5, layers_per_stack=2, num_stacks=1, max_length=12)
    sequences = np.array(list(itertools.product(range(4), repeat=3)), np.float32)[..., None]
    for label in (0, 1):
        condition = tf.fill([len(sequences)], label)
        total = np.exp(model.log_prob(sequences, condition).numpy().astype(np.float64)).sum()
        assert abs(total - 1.0) < 1e-4


@pytest.mark.parametrize("spec,kwargs,match", [
    ({"event_shape": [8, 8, 1], "kind": "image", "levels": 4}, {}, "mono audio"),
    ({"event_shape": [8, 2], "kind": "audio", "levels": 4}, {}, "mono audio"),
    ({"event_shape": [8, 1], "kind": "audio"}, {}, "levels"),
    ({"event_shape": [8, 1], "kind": "audio", "levels": 4}, {"kernel_size": 1}, "kernel_size"),
    ({"event_shape": [8, 1], "kind": "audio", "levels": 4}, {"max_length": 4}, "max_length"),
])
def test_bad_configuration_is_a_clear_error(spec, kwargs, match):
    with pytest.raises(UserError, match=match):
        WaveNet(spec, **kwargs)


def test_default_cap_is_ten_seconds_at_the_sample_rate():
    assert WaveNet(SPEC).max_length == 80000
