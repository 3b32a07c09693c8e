"""tfgen's Adam: Keras' maths, with large variables' dense updates in one fused kernel."""

import numpy as np
import pytest

from tfgen.backend import keras, tf
from tfgen.training.config import TrainingConfig
from tfgen.training.optimizers import Adam, build_optimizer


def _train(optimizer, initial, steps=20):
    variable = tf.Variable(initial)
    for i in range(steps):
        gradient = np.random.RandomState(i).randn(*initial.shape).astype(np.float32)
        optimizer.apply_gradients([(tf.constant(gradient), variable)])
    return variable.numpy()


def _ops_of_update(optimizer, shape):
    variable = tf.Variable(tf.ones(shape))
    optimizer.build([variable])
    graph = tf.function(lambda g: optimizer.apply_gradients([(g, variable)])).get_concrete_function(
        tf.TensorSpec(shape, tf.float32)).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("elements", [100, 40_000])
def test_same_updates_as_keras_adam(elements):
    initial = np.random.RandomState(0).randn(elements).astype(np.float32)
    kwargs = dict(learning_rate=1e-2, beta_1=0.5, beta_2=0.99, epsilon=1e-6)
    ours, keras_adam = _train(Adam(**kwargs), initial), _train(keras.optimizers.Adam(**kwargs), initial)
    assert np.abs(keras_adam - initial).max() > 0.05  # the steps moved the weights
    if elements < Adam().fused_min_elements:
        np.testing.assert_array_equal(ours, keras_adam)  # Keras' own ops
    else:  # the fused kernel: the same maths in another rounding order
        np.testing.assert_allclose(ours, keras_adam, atol=1e-5)


def test_only_large_dense_variables_use_the_fused_kernel():
    assert "ResourceApplyAdam" in _ops_of_update(Adam(), [256, 256])
    assert "ResourceApplyAdam" not in _ops_of_update(Adam(), [64, 64])
    assert "ResourceApplyAdam" in _ops_of_update(Adam(fused_min_elements=0), [4])
    assert "ResourceApplyAdam" not in _ops_of_update(Adam(fused_min_elements=None), [256, 256])
    assert "ResourceApplyAdam" not in _ops_of_update(Adam(amsgrad=True), [256, 256])


def test_config_round_trip_and_the_trainer_builds_it():
    optimizer = Adam(learning_rate=3e-4, beta_1=0.5, fused_min_elements=1000)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is Adam and again.fused_min_elements == 1000 and again.beta_1 == 0.5
    built = build_optimizer(TrainingConfig(optimizer="adam", learning_rate=0.01, beta_1=0.5), total_steps=10)
    assert type(built) is Adam and built.beta_1 == 0.5


def test_a_keras_adam_checkpoint_restores_into_it(tmp_path):
    """Same slots as Keras' Adam: a checkpoint of one restores into the other."""
    source = tf.Variable(tf.ones([40_000]))
    keras_adam = keras.optimizers.Adam(1e-2)
    keras_adam.apply_gradients([(tf.fill([40_000], 0.5), source)])
    path = tf.train.Checkpoint(v=source, opt=keras_adam).save(str(tmp_path / "ckpt"))

    target = tf.Variable(tf.zeros([40_000]))
    ours = Adam(learning_rate=1e-2)
    ours.build([target])
    tf.train.Checkpoint(v=target, opt=ours).restore(path).assert_existing_objects_matched()
    assert int(ours.iterations) == 1
    for a, b in zip(ours.variables, keras_adam.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
