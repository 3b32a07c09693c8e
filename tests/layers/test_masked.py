"""Masked 2-D convolutions: what each output may see, computed masks, the one-window form."""

import numpy as np
import pytest

from tfgen.backend import tf
from tfgen.layers import MaskedConv2D
from tfgen.layers.masked import centre_tap_mask

H, W = 5, 5


def dependence(layer, channels=1):
    """`[H, W, C]` bool: which inputs output (2, 2) (summed over features) depends on."""
    x = tf.constant(np.random.default_rng(0).normal(size=[1, H, W, channels]).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(layer(x)[0, 2, 2])
    return tape.gradient(y, x).numpy()[0] != 0


@pytest.mark.parametrize("stack,mask_type,expected", [
    # rows 0..4 of a 5x5 input; output at (2, 2), kernel 3
    ("full", "A", [".....", ".xxx.", ".x...", ".....", "....."]),
    ("full", "B", [".....", ".xxx.", ".xx..", ".....", "....."]),
    ("vertical", "B", [".....", ".xxx.", ".xxx.", ".....", "....."]),
    ("horizontal", "A", [".....", ".....", ".x...", ".....", "....."]),
    ("horizontal", "B", [".....", ".....", ".xx..", ".....", "....."]),
])
def test_outputs_see_only_the_allowed_pixels(stack, mask_type, expected):
    seen = dependence(MaskedConv2D(4, 3, stack=stack, mask_type=mask_type))[..., 0]
    drawn = ["".join("x" if s else "." for s in row) for row in seen]
    assert drawn == expected


def test_channel_groups_at_the_centre_tap():
    # Group of feature i is i % 3: under type A output group g sees input groups < g.
    np.testing.assert_array_equal(centre_tap_mask(3, 6, "A", 3)[:, :3], [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(centre_tap_mask(3, 6, "B", 3)[:, :3], [[1, 1, 1], [0, 1, 1], [0, 0, 1]])
    layer = MaskedConv2D(3, 3, stack="horizontal", mask_type="A", num_groups=3)
    x = tf.constant(np.random.default_rng(1).normal(size=[1, H, W, 3]).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
        red_output, blue_output = y[0, 2, 2, 0], y[0, 2, 2, 2]
    # Output channel 0 (red) sees no channel of its own pixel; blue sees red and green.
    red = tape.gradient(red_output, x).numpy()[0, 2, 2]
    assert not red.any()
    blue = tape.gradient(blue_output, x).numpy()[0, 2, 2]
    assert blue[0] != 0 and blue[1] != 0 and blue[2] == 0


def test_mask_is_computed_not_assigned():
    layer = MaskedConv2D(2, 3, stack="horizontal", mask_type="A")
    layer(tf.zeros([1, H, W, 1]))
    layer.kernel.assign(tf.ones_like(layer.kernel))
    before = layer.kernel.numpy().copy()
    x = tf.ones([1, H, W, 1])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))
    gradient = tape.gradient(loss, layer.kernel).numpy()
    # The hidden (centre) tap gets no gradient and keeps its stored weight.
    assert np.all(gradient[0, -1] == 0) and np.all(gradient[0, 0] != 0)
    np.testing.assert_array_equal(layer.kernel.numpy(), before)
    assert np.all(before[0, -1] == 1.0)


@pytest.mark.parametrize("stack", ["vertical", "horizontal"])
def test_one_window_gives_the_full_pass_output(stack):
    layer = MaskedConv2D(4, 3, stack=stack, mask_type="B", num_groups=2)
    x = tf.constant(np.random.default_rng(2).normal(size=[2, H, W, 2]).astype(np.float32))
    full = layer(x).numpy()
    if stack == "horizontal":  # pixels (3, 1) and (3, 2) -> output (3, 2)
        window = x[:, 3:4, 1:3]
        np.testing.assert_allclose(layer.call_valid(window).numpy()[:, 0, 0], full[:, 3, 2], rtol=1e-5, atol=1e-6)
    else:  # rows 2, 3, zero-padded left and right -> row 3
        window = tf.pad(x[:, 2:4], [[0, 0], [0, 0], [1, 1], [0, 0]])
        np.testing.assert_allclose(layer.call_valid(window).numpy()[:, 0], full[:, 3], rtol=1e-5, atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="kernel_size"):
        MaskedConv2D(4, 2)
    with pytest.raises(ValueError, match="stack"):
        MaskedConv2D(4, 3, stack="diagonal")
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2D(4, 3, mask_type="C")


def test_config_round_trip():
    layer = MaskedConv2D(4, 5, stack="horizontal", mask_type="A", num_groups=3, use_bias=False)
    assert MaskedConv2D.from_config(layer.get_config()).get_config() == layer.get_config()
