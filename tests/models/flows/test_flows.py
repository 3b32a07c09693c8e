"""What only flows promise, over every flow in the zoo (after zuko's tests/test_flows.py):
invertibility, log-det against the autodiff Jacobian, the latent mode at temperature 0,
tracing with an unknown batch. The contract every model keeps (shapes, seeds, config
and checkpoint round trips, a fit step, export) is tests/models/test_contract.py."""

import numpy as np
import pytest
import zoo
from zoo import cached, slow_unless

from tfgen.backend import tf

NAMES = sorted(zoo.TINY_FLOWS)
CONDITIONAL = [n for n in NAMES if n.endswith("_conditional")]
AUTOREGRESSIVE = ("MAF", "IAF", "AutoregressiveNeuralSplineFlow")
# The autodiff Jacobian of a sequential (D-pass) direction on images is slow; vectors
# cover the autoregressive flows, unconditional images the multi-scale coupling flows.
JACOBIAN_NAMES = [
    n for n in NAMES
    if "_vector" in n or (zoo.TINY_FLOWS[n][0] not in AUTOREGRESSIVE and not n.endswith("_conditional"))
]
_CACHE = {}


def in_default_run(name):
    """The entries checked by default: each class's representative (zoo.REPRESENTATIVE)
    and its unconditional variants, but the autoregressive flows' images (they flatten
    images to vectors); the other conditional variants join under -m slow."""
    if name in zoo.REPRESENTATIVE:
        return True
    return not name.endswith("_conditional") and not (zoo.TINY_FLOWS[name][0] in AUTOREGRESSIVE and "_image" in name)


def default_run(names, keep=lambda name: True):
    """`names`, those not `in_default_run` (or not `keep`) marked slow."""
    return slow_unless(lambda name: in_default_run(name) and keep(name), names)


def unconditional_or_representative(name):
    """Unconditional entries, plus one coupling and one autoregressive conditional flow."""
    return not name.endswith("_conditional") or name in ("real_nvp_vector_conditional", "maf_vector_conditional")


def vector_unconditional_or_representative(name):
    """As `unconditional_or_representative`, vectors only: by default the images' traces
    with an unknown batch are the exports' (the shipped RealNVP's conformance), for the
    time budget; every image entry is traced under -m slow."""
    return "_vector" in name and unconditional_or_representative(name)


def not_spline_image(name):
    """The spline flows' log-det by default on vectors only (the image one costs 7 s; its
    spline is the vector one's, behind a convolutional conditioner)."""
    return not ("spline" in name and (name.endswith("_conditional") or "_image" in name))


def reference_log_prob(name):
    """`cached(name).log_prob` of the example batch, computed once."""
    key = ("log_prob", name)
    if key not in _CACHE:
        x, condition = zoo.example_batch(name)
        _CACHE[key] = cached(name).log_prob(x, condition).numpy()
    return _CACHE[key]


def model_space(model, x):
    """x in the space the bijector maps to (unit cube, bin centres, for discrete data)."""
    return model._to_model_space(tf.constant(x))


@pytest.mark.parametrize("name", default_run(NAMES, vector_unconditional_or_representative))
def test_traces_with_unknown_batch_size(name):
    model = cached(name)
    x, condition = zoo.example_batch(name)
    spec = model.data_spec
    x_signature = tf.TensorSpec([None] + list(spec.event_shape), tf.float32)
    if spec.conditional:
        log_prob = tf.function(model.log_prob, input_signature=[x_signature, tf.TensorSpec([None], tf.int32)])
        sample = tf.function(
            lambda seed, c: model.sample(seed, 1.0, c),
            input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int32)],
        )
        samples = sample(tf.constant([1, 2, 3], tf.int64), condition[:3])
    else:
        log_prob = tf.function(lambda x: model.log_prob(x), input_signature=[x_signature])
        sample = tf.function(lambda seed: model.sample(seed), input_signature=[tf.TensorSpec([None], tf.int64)])
        samples = sample(tf.constant([1, 2, 3], tf.int64))
    args = (x, condition) if spec.conditional else (x,)
    np.testing.assert_allclose(log_prob(*args).numpy(), reference_log_prob(name), rtol=1e-4, atol=1e-4)
    assert samples.shape == (3,) + spec.event_shape


@pytest.mark.parametrize("name", default_run(NAMES))
def test_encode_decode_invert(name):
    model = cached(name)
    x, condition = zoo.example_batch(name)
    z = model.encode(x, condition)
    assert z.shape == x.shape and np.all(np.isfinite(z.numpy()))
    # Compared in the continuous model space: for discrete data decode() then
    # quantizes, which would hide small errors.
    u = model._bijector(condition).forward(z)
    np.testing.assert_allclose(u.numpy(), model_space(model, x).numpy(), atol=1e-4)
    if model.data_spec.is_discrete:
        np.testing.assert_array_equal(model._to_raw(u).numpy(), x)


@pytest.mark.parametrize("name", default_run(JACOBIAN_NAMES, not_spline_image))
def test_log_det_matches_autodiff_jacobian(name):
    model = cached(name)
    x, condition = zoo.example_batch(name, batch_size=2)
    shape = model.data_spec.event_shape
    bijector = model._bijector(condition)
    u = tf.reshape(model_space(model, x), [2, -1])
    with tf.GradientTape() as tape:
        tape.watch(u)
        z = tf.reshape(bijector.inverse(tf.reshape(u, [2, *shape])), [2, -1])
    jacobian = tape.batch_jacobian(z, u)
    _, expected = np.linalg.slogdet(jacobian.numpy().astype(np.float64))
    actual = bijector.inverse_log_det_jacobian(tf.reshape(u, [2, *shape]), event_ndims=len(shape))
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-3, atol=1e-3)










@pytest.mark.parametrize("name", default_run(NAMES))
def test_temperature_zero_gives_the_latent_mode(name):
    model = cached(name)
    spec = model.data_spec
    condition = np.zeros([2], np.int32) if spec.conditional else None
    samples = model.sample(tf.constant([1, 2], tf.int64), 0.0, condition).numpy()
    mode = model.decode(tf.zeros((1,) + spec.event_shape), None if condition is None else condition[:1]).numpy()
    np.testing.assert_allclose(samples, np.concatenate([mode, mode]), atol=1e-5)


@pytest.mark.parametrize("name", default_run(CONDITIONAL))
def test_condition_changes_log_prob(name):
    model = cached(name)
    x, _ = zoo.example_batch(name)
    first = reference_log_prob(name)  # condition = row index mod the number of classes
    second = model.log_prob(x, (np.arange(len(x)) + 1) % zoo.NUM_CLASSES).numpy()
    assert np.all(np.abs(first - second) > 1e-6)


@pytest.mark.parametrize("name", default_run([n for n in NAMES if n.startswith(("real_nvp", "maf"))][:4] or NAMES[:1]))
def test_nan_input_is_rejected_with_a_clear_error(name):
    model = cached(name)
    x, condition = zoo.example_batch(name)
    x[0].flat[0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        model.log_prob(x, condition)
