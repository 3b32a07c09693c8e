"""Glow's ActNorm data-dependent initialization: on the first training batch, never at inference."""

import numpy as np
import zoo

from tfgen.backend import keras, tf


def actnorm_flags(model):
    return [v.numpy() for v in model.non_trainable_variables if "initialized" in v.name]


def test_actnorm_initializes_on_the_first_training_batch_only():
    model = zoo.build("glow_vector")
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(64, 4)).astype(np.float32)
    model.log_prob(x)
    flags = actnorm_flags(model)
    assert flags and all(flag == 0.0 for flag in flags)  # inference never writes variables
    model.compile(keras.optimizers.Adam(1e-3), run_eagerly=True)  # the traced path: test_flows
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(64), epochs=1, verbose=0)
    assert all(flag == 1.0 for flag in actnorm_flags(model))
    # The first ActNorm standardized the data it saw (then one small Adam step moved it).
    first = model.levels[0][0][0].actnorm
    np.testing.assert_allclose(first.shift.numpy(), x.mean(0), atol=0.1)
    np.testing.assert_allclose(np.exp(first.log_scale.numpy()), x.std(0), rtol=0.1)
