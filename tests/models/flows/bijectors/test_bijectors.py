"""tfgen's own bijectors: invertibility, log-det consistency, the maths in their docstrings."""

import numpy as np
import pytest

from tfgen.backend import tf, tfb
from tfgen.models.flows.bijectors import (
    ActNorm,
    AdditiveTransformer,
    AffineTransformer,
    FactorOut,
    MaskedCoupling,
    RationalQuadraticTransformer,
    squeeze,
)
from tfgen.models.flows.networks import ActNormParameters

TRANSFORMERS = [AdditiveTransformer(), AffineTransformer(2.0), RationalQuadraticTransformer(num_bins=5, bound=3.0)]


def random_parameters_fn(num_params, seed=0):
    """A fixed nonlinear 'network' of the masked input: enough to test the coupling maths."""
    rng = np.random.default_rng(seed)
    weights = tf.constant(rng.normal(size=(num_params,)).astype(np.float32))

    def parameters_fn(masked):
        summary = tf.reduce_sum(masked, axis=list(range(1, masked.shape.rank)), keepdims=True)
        return tf.sin(summary[..., None] + masked[..., None]) * weights

    return parameters_fn


def autodiff_inverse_log_det(bijector, y):
    flat = tf.reshape(y, [y.shape[0], -1])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        x = tf.reshape(bijector.inverse(tf.reshape(flat, y.shape)), [y.shape[0], -1])
    return np.linalg.slogdet(tape.batch_jacobian(x, flat).numpy().astype(np.float64))[1]


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=lambda t: type(t).__name__)
def test_transformer_is_identity_at_zero_parameters(transformer):
    x = tf.constant(np.linspace(-5.0, 5.0, 11), tf.float32)
    bijector = transformer.bijector(tf.zeros([11, transformer.num_params]))
    np.testing.assert_allclose(bijector.forward(x).numpy(), x.numpy(), atol=1e-5)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(x, event_ndims=0).numpy(), 0.0, atol=1e-5)


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("event_shape", [(3,), (2, 2, 2)])
def test_masked_coupling_inverts_and_log_dets_agree(transformer, event_shape):
    mask = (np.arange(np.prod(event_shape)) % 2).reshape(event_shape)
    coupling = MaskedCoupling(mask, random_parameters_fn(transformer.num_params), transformer)
    x = tf.constant(np.random.default_rng(1).normal(size=(4,) + event_shape).astype(np.float32))
    y = coupling.forward(x)
    np.testing.assert_allclose(coupling.inverse(y).numpy(), x.numpy(), atol=1e-5)
    np.testing.assert_array_equal(y.numpy()[:, mask > 0], x.numpy()[:, mask > 0])
    fldj = coupling.forward_log_det_jacobian(x, event_ndims=len(event_shape)).numpy()
    fresh = MaskedCoupling(mask, random_parameters_fn(transformer.num_params), transformer)
    ildj = fresh.inverse_log_det_jacobian(y, event_ndims=len(event_shape)).numpy()
    np.testing.assert_allclose(ildj, -fldj, atol=1e-5)
    np.testing.assert_allclose(autodiff_inverse_log_det(fresh, y), ildj, atol=1e-4)


def test_squeeze_moves_each_2x2_patch_into_channels():
    image = tf.reshape(tf.range(16, dtype=tf.float32), [1, 4, 4, 1])
    squeezed = squeeze((4, 4, 1)).forward(image)
    assert squeezed.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(squeezed[0, 0, 0].numpy(), [0, 1, 4, 5])
    np.testing.assert_array_equal(squeeze((4, 4, 1)).inverse(squeezed).numpy(), image.numpy())


def test_squeeze_rejects_odd_sizes():
    with pytest.raises(ValueError, match="odd"):
        squeeze((3, 4, 1))


def test_factor_out_transforms_only_the_kept_channels():
    inner = tfb.Scale(2.0)
    bijector = FactorOut(inner, num_channels=1)
    x = tf.ones([2, 2, 2, 3])
    y = bijector.forward(x)
    np.testing.assert_array_equal(y[..., 0].numpy(), 2.0)
    np.testing.assert_array_equal(y[..., 1:].numpy(), 1.0)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(x, event_ndims=3).numpy(), 4 * np.log(2.0), rtol=1e-6)
    np.testing.assert_array_equal(bijector.inverse(y).numpy(), x.numpy())


def test_actnorm_initializes_from_the_first_batch_then_keeps_its_parameters():
    layer = ActNormParameters([2])
    data = tf.constant(np.random.default_rng(0).normal(3.0, 2.0, size=(256, 3, 3, 2)).astype(np.float32))
    normalized = ActNorm(layer, initialize=True).inverse(data).numpy()
    np.testing.assert_allclose(normalized.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    shift = layer.shift.numpy().copy()
    ActNorm(layer, initialize=True).inverse(data + 10.0)
    np.testing.assert_array_equal(layer.shift.numpy(), shift)
    # log|det| = H * W * sum(log_scale) on [H, W, C] events.
    ldj = ActNorm(layer).forward_log_det_jacobian(data[:1], event_ndims=3).numpy()
    np.testing.assert_allclose(ldj, 9 * layer.log_scale.numpy().sum(), rtol=1e-5)


def test_actnorm_without_initialize_leaves_parameters_alone():
    layer = ActNormParameters([2])
    ActNorm(layer).inverse(tf.fill([4, 2], 5.0))
    assert layer.initialized.numpy() == 0.0
    np.testing.assert_array_equal(layer.shift.numpy(), 0.0)
