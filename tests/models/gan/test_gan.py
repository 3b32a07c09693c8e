"""The GAN model: its options change what it computes, its export serves `sample` and
`decode` and no `log_prob`, and a real server answers a log_prob request as TF Serving
does for a signature that does not exist."""

import grpc
import numpy as np
import pytest
import zoo

from tfgen.backend import keras, tf
from tfgen.errors import UserError
from tfgen.export.saved_model import export_model
from tfgen.models.gan import GAN
from tfgen.models.gan.networks import SpectralNormalization

VECTOR = {"event_shape": [2], "kind": "vector"}
DIGITS = {"event_shape": [8, 8, 1], "kind": "image", "levels": 17, "num_classes": 10}
TINY = dict(latent_dim=4, generator_units=[8], discriminator_units=[8], generator_filters=[8, 4],
            discriminator_filters=[4, 8])


def fit(model, x, condition=None, steps=3, **optimizers):
    optimizers = optimizers or dict(generator_optimizer=keras.optimizers.Adam(1e-2),
                                    discriminator_optimizer=keras.optimizers.Adam(1e-2))
    model.compile(**optimizers)
    data = tf.data.Dataset.from_tensor_slices(x if condition is None else (x, condition)).batch(len(x)).repeat()
    return model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0).history


def vectors(n=32, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)


@pytest.mark.parametrize("kwargs, message", [
    ({"loss": "wgan"}, r"unknown GAN loss 'wgan'; valid: \['hinge', 'least_squares', 'minimax', 'non_saturating', "
                       r"'wasserstein'\]"),
    ({"network": "resnet"}, r"unknown GAN network 'resnet'; valid: \['mlp', 'dcgan'\]"),
    ({"network": "dcgan"}, r"network 'dcgan' with 2 upsamplings needs images"),
    ({"discriminator_steps": 0}, "discriminator_steps must be >= 1"),
    ({"ema_decay": 1.0}, r"ema_decay must be in \[0, 1\)"),
])
def test_bad_options_are_one_line_errors(kwargs, message):
    with pytest.raises(UserError, match=message) as error:
        GAN(VECTOR, **{**TINY, **kwargs})
    assert "\n" not in str(error.value)


def test_compile_takes_named_optimizers_or_a_dict_and_refuses_half():
    model = GAN(VECTOR, **TINY)
    generator, discriminator = keras.optimizers.Adam(1e-3), keras.optimizers.SGD(1e-2)
    model.compile(generator_optimizer=generator, discriminator_optimizer=discriminator)
    assert model.optimizers == {"generator": generator, "discriminator": discriminator}
    model.compile(optimizer={"generator": "adam", "discriminator": "sgd"})
    assert isinstance(model.optimizers["discriminator"], keras.optimizers.SGD)
    assert model.get_config()["loss"] == "non_saturating"  # not Keras' compile(loss=...)
    with pytest.raises(UserError, match="needs both generator_optimizer and discriminator_optimizer"):
        model.compile(generator_optimizer=generator)


def test_k_discriminator_steps_per_generator_step_each_optimizer_on_its_own_network():
    model = GAN(VECTOR, **TINY, discriminator_steps=3, loss="wasserstein", gradient_penalty_weight=10.0)
    generator_before = [w.numpy().copy() for w in model.generator.trainable_variables]
    fit(model, vectors(), steps=2)
    assert int(model.optimizers["generator"].iterations) == 2
    assert int(model.optimizers["discriminator"].iterations) == 6
    names = lambda variables: {v.ref() for v in variables}  # noqa: E731
    assert names(model.variables_for_optimizer("generator")).isdisjoint(
        names(model.variables_for_optimizer("discriminator")))
    assert any(not np.array_equal(b, a.numpy()) for b, a in zip(generator_before, model.generator.trainable_variables))


def test_samples_come_from_the_moving_average_of_the_generator():
    model = GAN(VECTOR, **TINY, ema_decay=0.9)
    fit(model, vectors(), steps=5)
    seeds = tf.range(6, dtype=tf.int64)
    z = zoo.example_codes(model, 6, seeds)
    np.testing.assert_allclose(model.sample(seeds).numpy(), model.ema_generator(z).numpy(), rtol=1e-6)
    # After 5 updates the average lags the trained weights: it is not a copy.
    assert not np.allclose(model.ema_generator(z).numpy(), model.generator(z).numpy())
    # Without an EMA the trained generator itself samples.
    plain = GAN(VECTOR, **TINY, ema_decay=0.0)
    assert plain.ema_generator is None
    np.testing.assert_allclose(plain.sample(seeds).numpy(), plain.generator(zoo.example_codes(plain, 6, seeds)).numpy())


def test_discrete_samples_are_levels_and_temperature_scales_the_code():
    model = GAN(dict(DIGITS, num_classes=None), **TINY)
    samples = model.sample(tf.range(4, dtype=tf.int64), tf.fill([4], 0.5)).numpy()
    assert samples.shape == (4, 8, 8, 1)
    np.testing.assert_array_equal(samples, np.round(samples))
    assert samples.min() >= 0 and samples.max() <= 16
    seeds = tf.range(3, dtype=tf.int64)
    np.testing.assert_array_equal(model.sample(seeds, tf.fill([3], 0.5)).numpy(),
                                  model.decode(0.5 * zoo.example_codes(model, 3, seeds)).numpy())


def test_spectral_normalization_bounds_the_largest_singular_value():
    layer = SpectralNormalization(keras.layers.Dense(5))
    layer(tf.zeros([1, 7]))
    layer.layer.kernel.assign(tf.random.stateless_normal([7, 5], seed=[1, 2]) * 10.0)
    for _ in range(30):  # power iterations converge
        layer(tf.zeros([1, 7]), training=True)
    normalized = layer.normalized_kernel(training=False).numpy()
    np.testing.assert_allclose(np.linalg.svd(normalized, compute_uv=False)[0], 1.0, rtol=1e-3)
    # The gradient flows through sigma, and the trainable kernel is never written.
    kernel = layer.layer.kernel.numpy().copy()
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(layer(tf.ones([2, 7]), training=True))
    assert tape.gradient(out, layer.layer.kernel) is not None
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), kernel)


def test_projection_discriminator_depends_on_the_class():
    model = GAN(DIGITS, **TINY)
    x = tf.repeat(tf.random.stateless_uniform([1, 8, 8, 1], [0, 1], 0, 17, tf.int32), 4, axis=0)
    model.discriminator.projection.kernel.assign(tf.random.normal(model.discriminator.projection.kernel.shape))
    scores = model((tf.cast(x, tf.float32), tf.constant([0, 1, 2, 3])))  # one image, four classes
    assert len(set(np.round(scores.numpy(), 5))) == 4


@pytest.fixture(scope="module")
def served_gan(tmp_path_factory):
    """A conditional GAN export on a real tfgen server (loopback, free ports)."""
    from tfgen.serving.model_manager import ModelConfig
    from tfgen.serving.server import ServerOptions, start_in_thread

    root = tmp_path_factory.mktemp("gan")
    model = zoo.cached("gan_image_conditional")
    export_model(model, str(root / "gan"))
    server = start_in_thread(ServerOptions(models=[ModelConfig(name="gan", base_path=str(root / "gan"))], port=0,
                                           rest_api_port=0))
    yield model, server
    server.stop()


def test_a_served_gan_samples_and_answers_log_prob_as_an_unknown_signature(served_gan):
    from tfgen.serving import Client

    model, server = served_gan
    with Client(server.grpc_address, timeout=30) as client:
        seeds, condition = np.arange(3, dtype=np.int64), np.array([0, 1, 2], np.int32)
        served = client.sample("gan", seeds, condition=condition)
        np.testing.assert_allclose(served["samples"], model.sample(seeds, condition=condition).numpy(), atol=1e-5)
        with pytest.raises(grpc.RpcError) as error:
            client.predict("gan", {"x": np.zeros([1, 4, 4, 1], np.float32), "condition": condition[:1]},
                           signature="log_prob")
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.value.details() == 'Serving signature key "log_prob" not found.'
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.rest_url + "/v1/models/gan:predict", method="POST", data=json.dumps(
        {"signature_name": "log_prob", "instances": [{"x": np.zeros([4, 4, 1]).tolist(), "condition": 0}]}).encode())
    with pytest.raises(urllib.error.HTTPError) as http_error:
        urllib.request.urlopen(request, timeout=30)
    assert http_error.value.code == 400
    assert json.loads(http_error.value.read()) == {
        "error": 'Serving signature name: "log_prob" not found in signature def'}
