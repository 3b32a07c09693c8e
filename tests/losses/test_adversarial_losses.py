"""Each GAN loss against numbers worked out by hand from its formula, through one shared
mixin (TF-GAN's losses_impl_test.py layout): a loss adds only its expected values."""

import math

import numpy as np
import pytest

from tfgen.backend import tf
from tfgen.errors import UserError
from tfgen import losses

REAL = [0.0, 2.0]  # discriminator outputs on two real rows
GENERATED = [-1.0, 0.5]  # and on two generated rows


def softplus(v):
    return math.log1p(math.exp(v))


class LossMixin:
    """A loss pair and its values at REAL / GENERATED, computed by hand."""

    generator_loss = discriminator_loss = None
    expected_generator = expected_discriminator = None

    def test_values_match_the_hand_computation(self):
        g = type(self).generator_loss(tf.constant(GENERATED))
        d = type(self).discriminator_loss(tf.constant(REAL), tf.constant(GENERATED))
        assert g.shape == d.shape == ()
        assert g.dtype == d.dtype == tf.float32
        np.testing.assert_allclose([float(g), float(d)], [self.expected_generator, self.expected_discriminator],
                                   rtol=1e-6)

    def test_a_mean_over_rows_so_the_batch_size_does_not_scale_it(self):
        twice = lambda v: tf.constant(v + v)  # noqa: E731
        np.testing.assert_allclose(float(type(self).discriminator_loss(twice(REAL), twice(GENERATED))),
                                   self.expected_discriminator, rtol=1e-6)

    def test_the_generator_loss_falls_as_its_outputs_look_real(self):
        # Moving every generated output towards "real" (up) must not increase L_G.
        lower = float(type(self).generator_loss(tf.constant(GENERATED)))
        higher = float(type(self).generator_loss(tf.constant([v + 0.5 for v in GENERATED])))
        assert higher < lower

    def test_gradients_are_finite(self):
        real, generated = tf.Variable(REAL), tf.Variable(GENERATED)
        with tf.GradientTape() as tape:
            total = type(self).generator_loss(generated) + type(self).discriminator_loss(real, generated)
        assert all(np.isfinite(g.numpy()).all() for g in tape.gradient(total, [real, generated]))


class TestMinimax(LossMixin):
    generator_loss = losses.minimax_generator_loss
    discriminator_loss = losses.minimax_discriminator_loss
    # L_G = E[log(1 - sigma(D(G(z))))] = -mean(softplus(g))
    expected_generator = -(softplus(-1.0) + softplus(0.5)) / 2
    expected_discriminator = (softplus(-0.0) + softplus(-2.0)) / 2 + (softplus(-1.0) + softplus(0.5)) / 2


class TestNonSaturating(LossMixin):
    generator_loss = losses.modified_generator_loss
    discriminator_loss = losses.modified_discriminator_loss
    # -log sigma(v) = log(1 + e^-v)
    expected_generator = (math.log(1 + math.e) + math.log(1 + math.exp(-0.5))) / 2
    expected_discriminator = TestMinimax.expected_discriminator


class TestWasserstein(LossMixin):
    generator_loss = losses.wasserstein_generator_loss
    discriminator_loss = losses.wasserstein_discriminator_loss
    expected_generator = -(-1.0 + 0.5) / 2  # 0.25
    expected_discriminator = (-1.0 + 0.5) / 2 - (0.0 + 2.0) / 2  # -1.25


class TestLeastSquares(LossMixin):
    generator_loss = losses.least_squares_generator_loss
    discriminator_loss = losses.least_squares_discriminator_loss
    expected_generator = 0.5 * ((-1 - 1) ** 2 + (0.5 - 1) ** 2) / 2  # 1.0625
    expected_discriminator = 0.5 * ((0 - 1) ** 2 + (2 - 1) ** 2) / 2 + 0.5 * ((-1) ** 2 + 0.5 ** 2) / 2  # 0.8125


class TestHinge(LossMixin):
    generator_loss = losses.hinge_generator_loss
    discriminator_loss = losses.hinge_discriminator_loss
    expected_generator = 0.25
    # real: max(0, 1-0)=1, max(0, 1-2)=0; generated: max(0, 1-1)=0, max(0, 1.5)=1.5
    expected_discriminator = (1 + 0) / 2 + (0 + 1.5) / 2


def linear_critic(weights):
    """D(x) = x . w per row (gradient w for every row)."""
    w = tf.constant(weights, tf.float32)
    return lambda x: tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]) * w, -1)


def test_gradient_penalty_of_a_linear_critic_is_its_norm_minus_one_squared():
    # ||w|| = 5 for w = (3, 4) everywhere, so GP = (5 - 1)^2 whatever alpha is.
    real, generated = tf.constant([[1.0, 2.0], [0.0, 0.0]]), tf.constant([[-1.0, 0.0], [3.0, 3.0]])
    penalty = losses.wasserstein_gradient_penalty(linear_critic([3.0, 4.0]), real, generated, seed=[1, 2])
    np.testing.assert_allclose(float(penalty), 16.0, rtol=1e-5)


def test_gradient_penalty_interpolates_uniformly_between_the_rows():
    # D(x) = x^2 / 2 has gradient x, so with real = 1 and generated = 0 the norm at the
    # interpolate is alpha itself: GP = E[(alpha - 1)^2] = 1/3 for alpha ~ U[0, 1]
    # (a normal alpha, keras-io#624, would give E[(a - 1)^2] = 2).
    rows = 20000
    critic = lambda x: tf.reduce_sum(tf.square(x), -1) / 2  # noqa: E731
    penalty = losses.wasserstein_gradient_penalty(critic, tf.ones([rows, 1]), tf.zeros([rows, 1]), seed=[3, 4])
    assert abs(float(penalty) - 1 / 3) < 0.01


def test_gradient_penalty_is_finite_where_the_critic_is_flat():
    real = tf.Variable(tf.zeros([3, 2, 2, 1]))
    flat = lambda x: tf.zeros([tf.shape(x)[0]]) * tf.reduce_sum(x)  # noqa: E731  zero gradient everywhere
    with tf.GradientTape() as tape:
        penalty = losses.wasserstein_gradient_penalty(flat, real, tf.zeros_like(real), seed=[0, 0])
    np.testing.assert_allclose(float(penalty), 1.0, atol=1e-5)  # (sqrt(eps) - 1)^2
    gradient = tape.gradient(penalty, real)
    assert gradient is None or np.isfinite(gradient.numpy()).all()
    # The naive norm's gradient at zero is NaN: the reason for safe_norm.
    zero = tf.Variable(tf.zeros([2]))
    with tf.GradientTape() as tape:
        naive = tf.norm(zero)
    assert np.isnan(tape.gradient(naive, zero).numpy()).all()
    with tf.GradientTape() as tape:
        safe = losses.safe_norm(zero, axis=0)
    assert np.isfinite(tape.gradient(safe, zero).numpy()).all()


def test_r1_penalty_is_the_mean_squared_gradient_norm_on_real_rows():
    # D(x) = sum(x^2) / 2: gradient x, so R1 = mean(||x||^2) = (1 + 4 + 4 + 9 + 0) / 2.
    critic = lambda x: tf.reduce_sum(tf.square(x), -1) / 2  # noqa: E731
    np.testing.assert_allclose(float(losses.r1_penalty(critic, tf.constant([[1.0, 2.0, 2.0], [3.0, 0.0, 0.0]]))),
                               9.0, rtol=1e-6)


def test_penalties_pass_the_condition_to_the_discriminator():
    critic = lambda x, c: tf.reduce_sum(x, -1) * tf.cast(c, tf.float32)  # noqa: E731  gradient c per row
    value = losses.r1_penalty(critic, tf.ones([2, 3]), condition=tf.constant([1, 2]))
    np.testing.assert_allclose(float(value), (3 * 1 + 3 * 4) / 2, rtol=1e-6)


def test_a_bad_loss_name_lists_the_valid_ones():
    with pytest.raises(UserError, match=r"unknown GAN loss 'wgan'; valid: \['hinge', 'least_squares', "):
        losses.loss_pair("wgan")
    assert losses.loss_pair("hinge") == (losses.hinge_generator_loss, losses.hinge_discriminator_loss)
