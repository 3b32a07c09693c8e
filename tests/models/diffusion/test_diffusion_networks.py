"""The denoising networks: shapes, dependence on t and class, config round trip."""

import numpy as np
import pytest

from tfgen.backend import keras, tf
from tfgen.models.diffusion import networks


def test_sinusoidal_embedding_is_the_formula():
    layer = networks.SinusoidalEmbedding(4, scale=2.0, max_period=100.0)
    t = np.array([0.0, 0.5, 3.0], np.float32)
    frequencies = 100.0 ** (-np.arange(2) / 2)
    angles = (2.0 * t)[:, None] * frequencies[None, :]
    np.testing.assert_allclose(layer(t).numpy(), np.concatenate([np.sin(angles), np.cos(angles)], -1), atol=1e-6)
    with pytest.raises(ValueError, match="even"):
        networks.SinusoidalEmbedding(5)


def _perturb_output_layer(network):
    # The output layers start at zero (an untrained denoiser predicts zero noise), so
    # give them weights before checking what the output depends on.
    for variable in network.trainable_variables:
        if np.all(variable.numpy() == 0) and len(variable.shape) > 1:
            variable.assign(tf.random.stateless_normal(variable.shape, seed=[1, 2]) * 0.1)


@pytest.mark.parametrize("make,shape", [
    (lambda: networks.MLPDenoiser([3], hidden_units=(16, 16), embedding_dim=8, num_classes=2), [3]),
    (lambda: networks.UNet([8, 8, 1], filters=8, channel_multipliers=(1, 2), groups=4, embedding_dim=16,
                           num_classes=2), [8, 8, 1]),
])
def test_denoiser_reads_x_t_and_class_and_round_trips(make, shape):
    network = make()
    x = tf.random.stateless_normal([4, *shape], seed=[0, 1])
    t = tf.constant([0.1, 0.1, 0.9, 0.9])
    condition = tf.constant([0, 1, 0, 2])  # 2 = the null class
    assert network(x, t, condition).shape == [4, *shape]
    _perturb_output_layer(network)
    out = network(x, t, condition).numpy()
    same_x = network(tf.repeat(x[:1], 4, 0), t, condition).numpy()
    assert not np.allclose(same_x[0], same_x[2])  # t matters
    assert not np.allclose(same_x[0], same_x[1])  # the class matters
    np.testing.assert_allclose(network(x, t, None).numpy()[3], out[3], atol=1e-5)  # None = null class
    clone = type(network).from_config(network.get_config())
    clone(x, t, condition)
    clone.set_weights(network.get_weights())
    np.testing.assert_allclose(clone(x, t, condition).numpy(), out, atol=1e-5)
    assert keras.saving.get_registered_object(f"tfgen>{type(network).__name__}") is type(network)


def test_unet_rows_are_independent_and_sides_are_checked():
    network = networks.UNet([8, 8, 1], filters=8, channel_multipliers=(1, 2, 2), groups=4, embedding_dim=16)
    _perturb_output_layer(network)
    x = tf.random.stateless_normal([3, 8, 8, 1], seed=[3, 4])
    t = tf.constant([0.2, 0.5, 0.7])
    batch = network(x, t).numpy()
    np.testing.assert_allclose(network(x[1:2], t[1:2]).numpy()[0], batch[1], atol=1e-5)
    with pytest.raises(ValueError, match="multiples of 4"):
        networks.UNet([6, 6, 1], channel_multipliers=(1, 2, 2))
