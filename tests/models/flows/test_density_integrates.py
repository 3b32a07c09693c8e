"""A trained 2-D flow is a normalized density: its integral over the plane is 1."""

import numpy as np
import pytest
from sklearn.datasets import make_moons

from tfgen.backend import keras, tf
from tfgen.models.flows import MAF, RealNVP


def two_moons(n=2048, seed=0):
    x, _ = make_moons(n_samples=n, noise=0.05, random_state=seed)
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


@pytest.mark.parametrize(
    "flow_class,kwargs",
    [(MAF, {"num_steps": 3}), pytest.param(RealNVP, {"steps_per_level": 4}, marks=pytest.mark.slow)],
)
def test_two_moons_density_integrates_to_one(flow_class, kwargs):
    keras.utils.set_random_seed(0)
    model = flow_class({"event_shape": [2]}, hidden_units=32, **kwargs)
    model.compile(keras.optimizers.Adam(3e-3))
    data = tf.data.Dataset.from_tensor_slices(two_moons()).shuffle(2048, seed=0).batch(256)
    history = model.fit(data, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # Riemann sum over [-4, 4]^2 at 300 x 300 cell centres.
    edges = np.linspace(-4.0, 4.0, 301, dtype=np.float32)
    centres = (edges[:-1] + edges[1:]) / 2
    grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    log_prob = tf.function(model.log_prob)(tf.constant(grid)).numpy()
    integral = np.exp(log_prob).sum() * (edges[1] - edges[0]) ** 2
    assert abs(integral - 1.0) < 0.02, integral
