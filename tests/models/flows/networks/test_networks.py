"""Shared network pieces: MADE's autoregressive property, identity-starting coupling nets."""

import numpy as np

from tfgen.backend import tf
from tfgen.models.flows.networks import MADE, CouplingMLP, CouplingResNet, LUParameters
from tfgen.models.flows.networks.coupling import broadcast_condition


def perturbed(layer):
    rng = np.random.default_rng(0)
    for variable in layer.trainable_variables:
        variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    return layer


def test_made_output_i_depends_only_on_inputs_before_i():
    made = MADE(num_inputs=5, hidden_units=8, num_hidden_layers=2, params_per_dim=3)
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 5)).astype(np.float32))
    made(x)
    perturbed(made)
    with tf.GradientTape() as tape:
        tape.watch(x)
        params = tf.reshape(made(x), [2, -1])
    jacobian = tape.batch_jacobian(params, x).numpy().reshape(2, 5, 3, 5)
    dependence = np.abs(jacobian).sum(axis=(0, 2)) > 0  # [output dim, input dim]
    assert not np.any(np.triu(dependence))  # only strictly earlier inputs
    assert np.all(np.diagonal(dependence, offset=-1))  # input i reaches output i+1


def test_made_condition_reaches_every_output():
    made = MADE(num_inputs=3, hidden_units=6, num_hidden_layers=1, params_per_dim=2)
    x = tf.zeros([1, 3])
    condition = tf.constant([[1.0, -1.0]])
    made(x, condition=condition)
    perturbed(made)
    difference = made(x, condition=condition) - made(x, condition=-condition)
    assert np.all(np.abs(difference.numpy()) > 0)


def test_coupling_networks_start_at_zero_output():
    vectors = CouplingMLP(8, 2, output_units=6)(tf.ones([2, 3]), condition=tf.ones([2, 4]))
    images = CouplingResNet(8, 1, output_channels=4)(tf.ones([2, 4, 4, 2]), condition=tf.ones([2, 4]))
    assert vectors.shape == (2, 6) and images.shape == (2, 4, 4, 4)
    assert np.all(vectors.numpy() == 0) and np.all(images.numpy() == 0)


def test_broadcast_condition_tiles_over_image_positions():
    out = broadcast_condition(tf.zeros([2, 3, 3, 1]), tf.constant([[1.0, 2.0], [3.0, 4.0]]))
    assert out.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(out[1, 2, 0].numpy(), [0.0, 3.0, 4.0])


def test_lu_parameters_start_from_a_rotation_fixed_by_the_seed():
    first, second = LUParameters(3, seed=4), LUParameters(3, seed=4)
    np.testing.assert_array_equal(first.lower_upper.numpy(), second.lower_upper.numpy())
    lower = np.tril(first.lower_upper.numpy(), -1) + np.eye(3)
    upper = np.triu(first.lower_upper.numpy())
    assert abs(abs(np.linalg.det(lower @ upper)) - 1.0) < 1e-5
