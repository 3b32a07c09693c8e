"""The VAE family: bounds, posterior flows, priors, numerics, and a linear VAE that
recovers the exact pPCA marginal."""

import math

import numpy as np
import pytest

import zoo
from sklearn.datasets import load_digits
from tfgen.backend import keras, tf
from tfgen.data.datasets import Split
from tfgen.errors import UserError
from tfgen.models.ppca import PPCA
from tfgen.models.vae import VAE, posteriors, priors

IMAGE = {"event_shape": [4, 4, 1], "kind": "image", "levels": 17}


def pca_like_data(rows, seed):
    """Rows of a linear-Gaussian model: 2 factors in 6 dims plus isotropic noise."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(6, 2)) * 1.5
    return (rng.normal(size=(rows, 2)) @ weights.T + 0.4 * rng.normal(size=(rows, 6))).astype(np.float32)


def image_batch(rows=16, seed=0):
    return np.random.default_rng(seed).integers(0, 17, size=(rows, 4, 4, 1)).astype(np.float32)


def trained_tiny_vae(**kwargs):
    """A small VAE fitted for a few seconds to the 8x8 digits with a 2-d latent, whose
    true posterior is far from Gaussian, so the IWAE estimate has much to gain over the
    ELBO."""
    digits = load_digits().images[..., None].astype(np.float32)
    keras.utils.set_random_seed(0)
    model = VAE({"event_shape": [8, 8, 1], "kind": "image", "levels": 17}, latent_dim=2, hidden_units=[64], **kwargs)
    model.compile(keras.optimizers.Adam(0.003))
    model.fit(digits[:1500], batch_size=100, epochs=8, verbose=0)
    return model, digits[1500:1700]


@pytest.mark.parametrize("kwargs", [{}, pytest.param({"prior": "vamp", "posterior": "iaf"}, marks=pytest.mark.slow)])
def test_elbo_is_below_the_iwae_estimate_which_grows_with_k(kwargs):
    model, held_out = trained_tiny_vae(**kwargs)
    means = []
    for k in (1, 2, 4, 8, 16):
        # The fixed draws are shared by every row, so their error does not average out
        # over rows: the expectation over draw sets is estimated over 8 of them.
        estimates = []
        for seed in range(8):
            bounds = model.importance_weighted_bounds(held_out, num_samples=k, seed=seed)
            # Jensen on the same draws: mean log w <= log mean w, row by row.
            assert np.all(bounds["elbo"].numpy() <= bounds["log_prob"].numpy() + 1e-4)
            estimates.append(float(tf.reduce_mean(bounds["log_prob"])))
        means.append(np.mean(estimates))
    assert all(a < b for a, b in zip(means, means[1:])), means


def test_analytic_kl_equals_the_monte_carlo_kl():
    model = VAE(IMAGE, latent_dim=3, hidden_units=[8])
    x = image_batch(4)
    model(x)
    zoo.perturb_weights(model, seed=0)
    analytic = model._objective(x, None)["kl"].numpy()
    mean, scale = model.posterior(x)
    z = mean + scale * tf.random.stateless_normal([20000, *mean.shape], seed=[1, 2])
    monte_carlo = tf.reduce_mean(priors.normal_log_density(z, mean, scale) - priors.normal_log_density(z, 0.0, 1.0), 0)
    np.testing.assert_allclose(analytic, monte_carlo.numpy(), rtol=0.05, atol=0.02)


@pytest.mark.parametrize("posterior", ["iaf", "planar", "radial", "householder", "sylvester"])
def test_posterior_flow_log_det_is_the_jacobian_log_det(posterior):
    latent_dim = 3
    (step,) = posteriors.posterior_flow(posterior, latent_dim, 1, 8)
    h = tf.random.stateless_normal([5, 6], seed=[3, 4])
    z = tf.random.stateless_normal([5, latent_dim], seed=[5, 6])
    step(z, h)
    rng = np.random.default_rng(7)
    for variable in step.trainable_variables:  # away from the identity start
        variable.assign(variable + 0.5 * rng.normal(size=variable.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(z)
        z_next, log_det = step(z, h)
    jacobian = tape.batch_jacobian(z_next, z)
    _, expected = np.linalg.slogdet(jacobian.numpy())
    np.testing.assert_allclose(log_det.numpy(), expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", sorted(n for n in zoo.LATENT_MODELS if n.startswith("vae")))
def test_extreme_initial_weights_give_finite_losses_and_gradients(name):
    model = zoo.build(name)
    x, condition = zoo.example_batch(name)
    rng = np.random.default_rng(0)
    for variable in model.trainable_variables:
        # Kernels 10x their initial scale; every bias and raw scale at +-50 (saturated).
        if len(variable.shape) >= 2:
            value = 10.0 * variable.numpy() + rng.normal(size=variable.shape)
        else:
            value = 50.0 * rng.choice([-1.0, 1.0], size=variable.shape)
        variable.assign(value.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(model._objective(x, condition)["objective"])
    gradients = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss)), loss
    assert all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in gradients if g is not None)
    assert np.all(np.isfinite(model.log_prob(x, condition).numpy()))


def test_kl_weight_warms_up_with_the_optimizer_steps():
    model = VAE(IMAGE, latent_dim=2, hidden_units=[8], beta=0.5, kl_warmup_steps=10)
    model.compile(keras.optimizers.Adam(1e-3))
    x = image_batch(8)
    assert float(model._kl_weight()) == pytest.approx(0.05)
    model.fit(x, batch_size=2, epochs=1, verbose=0)  # 4 steps
    assert float(model._kl_weight()) == pytest.approx(0.5 * 5 / 10)
    model.fit(x, batch_size=1, epochs=2, verbose=0)  # 16 more steps
    assert float(model._kl_weight()) == pytest.approx(0.5)


def test_conditional_samples_follow_the_condition():
    model = zoo.perturb_weights(zoo.build("vae_image_conditional"), seed=3)
    model.condition_embedding.embeddings.assign(10.0 * model.condition_embedding.embeddings)
    seeds = tf.range(6, dtype=tf.int64)
    ones = tf.ones([6])
    first = model.sample(seeds, ones, tf.zeros([6], tf.int32)).numpy()
    again = model.sample(seeds, ones, tf.zeros([6], tf.int32)).numpy()
    other = model.sample(seeds, ones, tf.fill([6], 2)).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_linear_gaussian_vae_recovers_the_exact_ppca_marginal():
    data = pca_like_data(5000, seed=0)
    train, test = data[:4000], data[4000:]
    spec = {"event_shape": [6]}
    ppca = PPCA(spec, latent_dim=2)
    ppca.initialize_from_data(Split(train))
    exact = float(tf.reduce_mean(ppca.log_prob(test)))
    keras.utils.set_random_seed(0)
    vae = VAE(spec, latent_dim=2, hidden_units=[], likelihood="gaussian", num_importance_samples=256)
    vae.compile(keras.optimizers.Adam(0.02))
    vae.fit(train, batch_size=200, epochs=80, verbose=0)
    estimate = float(tf.reduce_mean(vae.log_prob(test)))
    assert abs(estimate - exact) / 6 < 0.05, (estimate, exact)


@pytest.mark.parametrize("kwargs, message", [
    ({"prior": "gaussian_mixture"}, "unknown prior 'gaussian_mixture'; valid: .*'maf'.*'vamp'"),
    ({"posterior": "nice"}, "unknown posterior 'nice'; valid: .*'householder'.*'sylvester'"),
    ({"likelihood": "poisson"}, "unknown likelihood 'poisson'; valid: .*'bernoulli'.*'categorical'"),
    ({"likelihood": "gaussian"}, "'gaussian' is for continuous data"),
    ({"likelihood": "bernoulli"}, "needs binary data"),
    ({"network": "resnet"}, "unknown network 'resnet'; valid: \\['mlp', 'conv'\\]"),
    ({"num_importance_samples": 0}, "num_importance_samples must be an integer in 1 .. 4096"),
    ({"num_importance_samples": 10 ** 6}, "num_importance_samples must be an integer in 1 .. 4096"),
    ({"objective": "wake_sleep"}, "unknown objective"),
])
def test_bad_configuration_names_the_valid_choices(kwargs, message):
    with pytest.raises(UserError, match=message):
        VAE(IMAGE, **kwargs)


def test_conv_network_needs_sides_divisible_by_four():
    with pytest.raises(UserError, match="multiples of 4"):
        VAE({"event_shape": [6, 6, 1], "levels": 17, "kind": "image"}, network="conv")


def test_iwae_objective_trains_a_tighter_bound_than_its_elbo():
    model = zoo.build("vae_image_conv_mixture_iwae")
    x, _ = zoo.example_batch("vae_image_conv_mixture_iwae", batch_size=8)
    terms = model._objective(x, None)
    # The K-sample IWAE bound is >= the mean of its single-sample bounds.
    assert float(tf.reduce_mean(terms["bound"])) >= float(tf.reduce_mean(terms["reconstruction"] - terms["kl"])) - 1e-4
    assert math.isfinite(float(tf.reduce_mean(terms["objective"])))
