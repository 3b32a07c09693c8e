"""The probability-flow ODE likelihood against densities known in closed form: Gaussian
data under the VE and VP perturbations, whose scores are exact."""

import numpy as np
import pytest

from tfgen.backend import tf
from tfgen.errors import UserError
from tfgen.models.diffusion import ode

#: Gaussian data N(0, C), C with correlation, so the divergence has off-diagonal parts.
COVARIANCE = np.array([[1.5, 0.6], [0.6, 0.8]], np.float32)
POINTS = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32) * 1.3


def gaussian_log_prob(x, covariance):
    inverse = np.linalg.inv(covariance)
    return (-0.5 * np.einsum("bi,ij,bj->b", x, inverse, x)
            - 0.5 * np.log(np.linalg.det(2 * np.pi * covariance)))


def gaussian_score(covariance_at):
    """score(x, t) of N(0, covariance_at(t)) (a [B, D, D] tensor of t [B])."""
    def score(x, t):
        return -tf.linalg.solve(covariance_at(t), x[:, :, None])[:, :, 0]
    return score


def log_prob(x, score, sde, **kwargs):
    return tf.function(lambda x: ode.probability_flow_log_prob(x, score, sde, **kwargs))(tf.constant(x)).numpy()


@pytest.mark.parametrize("solver", ["rk4", pytest.param("dopri5", marks=pytest.mark.slow)])
def test_variance_exploding_flow_gives_the_smoothed_gaussian_density(solver):
    # sigma_max >> the data scale: the prior N(0, sigma_max^2) is the perturbed density.
    sde = ode.VarianceExploding(sigma_min=0.05, sigma_max=100.0)
    covariance = lambda t: COVARIANCE + (sde.sigma(t) ** 2)[:, None, None] * tf.eye(2)  # noqa: E731
    got = log_prob(POINTS, gaussian_score(covariance), sde, solver=solver, steps=48, divergence="exact")
    expected = gaussian_log_prob(POINTS, COVARIANCE + 0.05 ** 2 * np.eye(2))
    np.testing.assert_allclose(got, expected, atol=3e-3)


@pytest.mark.parametrize("solver", ["rk4", pytest.param("dopri5", marks=pytest.mark.slow)])
def test_variance_preserving_flow_gives_the_data_density(solver):
    sde = ode.VariancePreserving(np.linspace(1e-4, 0.02, 1000))

    def covariance(t):
        alpha_bar = tf.exp(sde.log_alpha_bar(t))[:, None, None]
        return alpha_bar * COVARIANCE + (1 - alpha_bar) * tf.eye(2)

    got = log_prob(POINTS, gaussian_score(covariance), sde, solver=solver, steps=48, divergence="exact")
    np.testing.assert_allclose(got, gaussian_log_prob(POINTS, COVARIANCE), atol=3e-3)


def test_hutchinson_is_deterministic_row_independent_and_exact_on_a_diagonal_jacobian():
    sde = ode.VarianceExploding(sigma_min=0.05, sigma_max=100.0)
    diagonal = np.diag([1.5, 0.4]).astype(np.float32)
    covariance = lambda t: diagonal + (sde.sigma(t) ** 2)[:, None, None] * tf.eye(2)  # noqa: E731
    score = gaussian_score(covariance)
    exact = log_prob(POINTS, score, sde, steps=32, divergence="exact")
    # Rademacher probes: v^T A v = trace(A) for a diagonal A, so only the mechanics differ.
    estimate = log_prob(POINTS, score, sde, steps=32, divergence="hutchinson")
    np.testing.assert_allclose(estimate, exact, atol=1e-4)
    np.testing.assert_array_equal(log_prob(POINTS, score, sde, steps=32, divergence="hutchinson"), estimate)
    np.testing.assert_allclose(log_prob(POINTS[2:3], score, sde, steps=32, divergence="hutchinson"), estimate[2:3],
                               atol=1e-5)
    # On a correlated Jacobian the probe's error is v^T A v - trace(A): not zero.
    covariance = lambda t: COVARIANCE + (sde.sigma(t) ** 2)[:, None, None] * tf.eye(2)  # noqa: E731
    assert np.abs(log_prob(POINTS, gaussian_score(covariance), sde, steps=32, divergence="hutchinson")
                  - log_prob(POINTS, gaussian_score(covariance), sde, steps=32, divergence="exact")).max() > 1e-2


@pytest.mark.parametrize("settings,named", [
    (("euler", "auto", 8, 1e-5, 1e-5), "ode_solver"), (("rk4", "trace", 8, 1e-5, 1e-5), "ode_divergence"),
    (("rk4", "auto", 0, 1e-5, 1e-5), "ode_steps"), (("dopri5", "auto", 8, 0.0, 1e-5), "ode_rtol")])
def test_bad_solver_settings_are_one_line_errors_naming_the_setting(settings, named):
    with pytest.raises(UserError, match=named):
        ode.check_solver_settings(*settings)
