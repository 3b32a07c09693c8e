"""Probabilistic PCA: exact likelihood against scikit-learn, closed form vs gradient fit."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from tfgen.backend import keras, tf
from tfgen.data.datasets import Split
from tfgen.errors import UserError
from tfgen.models.ppca import PPCA, closed_form_fit

NUM_DIMS, LATENT_DIM = 6, 2


def ppca_data(num_rows, seed=0):
    """Rows of a known pPCA: 2 latent factors in 6 dims plus isotropic noise."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(NUM_DIMS, LATENT_DIM)) * 2.0
    return (rng.normal(size=(num_rows, LATENT_DIM)) @ weights.T + 0.5 * rng.normal(size=(num_rows, NUM_DIMS))
            + np.arange(NUM_DIMS)).astype(np.float32)


def fitted_model(x, **kwargs):
    model = PPCA({"event_shape": [NUM_DIMS]}, latent_dim=LATENT_DIM, **kwargs)
    model.initialize_from_data(Split(x))
    return model


def test_log_prob_equals_scikit_learn_probabilistic_pca():
    x = ppca_data(50_000)
    expected = PCA(n_components=LATENT_DIM).fit(x).score_samples(x[:500])
    np.testing.assert_allclose(fitted_model(x).log_prob(x[:500]).numpy(), expected, atol=1e-3)


def test_gradient_fit_converges_to_the_closed_form():
    x = ppca_data(4000, seed=1)
    closed_form = float(tf.reduce_mean(fitted_model(x).log_prob(x)))
    keras.utils.set_random_seed(0)
    model = fitted_model(x, initialization="random")
    model.compile(keras.optimizers.Adam(0.05))
    model.fit(x, batch_size=500, epochs=60, verbose=0)
    fitted = float(tf.reduce_mean(model.log_prob(x)))
    assert closed_form - 0.01 < fitted <= closed_form + 1e-3, (fitted, closed_form)


def test_posterior_matches_bayes_rule_on_the_joint_gaussian():
    x = ppca_data(2000, seed=2)
    model = fitted_model(x)
    mean, w, sigma = model.mean.numpy(), model.weights_matrix.numpy(), float(model.noise_scale)
    # z | x from the joint Gaussian of (z, x): Cov(z, x) = W^T, Cov(x) = W W^T + s^2 I.
    gain = w.T @ np.linalg.inv(w @ w.T + sigma ** 2 * np.eye(NUM_DIMS))
    posterior_mean, posterior_scale = model.posterior(x[:10])
    np.testing.assert_allclose(posterior_mean.numpy(), (x[:10] - mean) @ gain.T, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(posterior_scale.numpy()[0] ** 2, np.diag(np.eye(LATENT_DIM) - gain @ w),
                               rtol=1e-3)


def test_dequantized_closed_form_beats_a_perturbed_fit_on_discrete_data():
    rng = np.random.default_rng(3)
    x = np.clip(np.round(ppca_data(3000, seed=3) + 4), 0, 16).astype(np.float32)
    spec = {"event_shape": [NUM_DIMS], "levels": 17}
    model = PPCA(spec, latent_dim=LATENT_DIM)
    model.initialize_from_data(Split(x))
    best = float(tf.reduce_mean(model.log_prob(x)))
    model.weights_matrix.assign(model.weights_matrix + rng.normal(size=(NUM_DIMS, LATENT_DIM)).astype(np.float32) * 0.01)
    assert float(tf.reduce_mean(model.log_prob(x))) < best


def test_closed_form_rejects_a_latent_as_wide_as_the_data():
    with pytest.raises(UserError, match="latent_dim must be in 1 .. 5"):
        closed_form_fit(np.zeros((4, 6)), 6)
    with pytest.raises(UserError, match="unknown initialization 'pca'.*closed_form"):
        PPCA({"event_shape": [NUM_DIMS]}, initialization="pca")
