"""Causal dilated 1-D convolutions and gated units."""

import numpy as np

from tfgen.backend import tf
from tfgen.layers import CausalConv1D, ResidualSkip, gated_activation


def test_output_depends_on_exactly_the_dilated_past():
    conv = CausalConv1D(3, 2, dilation_rate=4)
    x = tf.constant(np.random.default_rng(0).normal(size=[1, 16, 2]).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(conv(x)[0, 10])
    seen = np.flatnonzero(np.abs(tape.gradient(y, x).numpy()[0]).sum(-1))
    assert list(seen) == [6, 10]
    assert conv.receptive_field == 5


def test_one_step_gives_the_full_pass_output():
    conv = CausalConv1D(5, 3, dilation_rate=2)
    x = tf.constant(np.random.default_rng(1).normal(size=[2, 12, 4]).astype(np.float32))
    full = conv(x).numpy()
    taps = tf.stack([x[:, 5], x[:, 7], x[:, 9]], axis=1)  # oldest first
    np.testing.assert_allclose(conv.call_step(taps).numpy(), full[:, 9], rtol=1e-5, atol=1e-6)
    # Before the start the past is zeros.
    first = tf.stack([tf.zeros_like(x[:, 0]), tf.zeros_like(x[:, 0]), x[:, 0]], axis=1)
    np.testing.assert_allclose(conv.call_step(first).numpy(), full[:, 0], rtol=1e-5, atol=1e-6)


def test_config_keeps_causal_padding():
    conv = CausalConv1D(5, 3, dilation_rate=2)
    copy = CausalConv1D.from_config(conv.get_config())
    assert copy.padding == "causal" and copy.dilation_rate == (2,) and copy.filters == 5


def test_gated_activation_and_residual_skip():
    features = tf.constant([[0.5, -1.0, 2.0, 0.0]])
    np.testing.assert_allclose(gated_activation(features).numpy(),
                               [[np.tanh(0.5) / (1 + np.exp(-2.0)), np.tanh(-1.0) * 0.5]], rtol=1e-6)
    block = ResidualSkip(2, skip_channels=3)
    x, z = tf.ones([4, 2]), tf.ones([4, 2])
    out, skip = block(x, z)
    np.testing.assert_allclose(out.numpy(), 1.0 + block.residual_projection(z).numpy(), rtol=1e-6)
    assert skip.shape == (4, 3)
    out, skip = ResidualSkip(2, residual=False)(x, z)
    assert skip is None and out.shape == (4, 2)
