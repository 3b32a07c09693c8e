"""Probabilistic PCA (Tipping & Bishop 1999): the linear, exactly solvable latent model.

    z ~ N(0, I_L),    u | z ~ N(W z + mu, sigma^2 I_D),    so    u ~ N(mu, W W^T + sigma^2 I)

on the model's data space u (the raw data when continuous; the unit cube, uniformly
dequantized, for discrete data, like the flows: `tfgen.models.likelihood.DensityModel`).
The marginal is exact, so `log_prob` is the exact density (a dequantization bound on
discrete data), and the posterior is Gaussian with a covariance shared by every row:

    z | u ~ N(M^-1 W^T (u - mu), sigma^2 M^-1),    M = W^T W + sigma^2 I_L.

The maximum-likelihood fit is closed-form: with the data covariance's eigenvalues
l_1 >= ... >= l_D and eigenvectors U, sigma^2 = mean(l_{L+1..D}) and
W = U_L (diag(l_1..l_L) - sigma^2 I)^{1/2} (up to a rotation). `initialization:
"closed_form"` sets it from the training split before the first epoch; `fit` then
maximizes the same likelihood by gradient steps (from a random start with
`initialization: "random"`, it converges to the closed form).
"""

import numpy as np

from tfgen import distributions
from tfgen.backend import keras, tf, tfd
from tfgen.errors import UserError
from tfgen.models.base import register
from tfgen.models.likelihood import DensityModel
from tfgen.random import per_row_normal

INITIALIZATIONS = ("closed_form", "random")


def closed_form_fit(u, latent_dim, extra_variance=0.0):
    """Maximum-likelihood (mean, W, sigma) of pPCA on rows `u` `[N, D]` (float64 maths).

    Args:
      u: the data, in the model's data space.
      latent_dim: L < D.
      extra_variance: added to every variance, e.g. the variance 1/(12 levels^2) of
        uniform dequantization noise, whose expected log-likelihood is that of the
        data covariance plus it.
    """
    u = np.asarray(u, np.float64).reshape(len(u), -1)
    num_dims = u.shape[1]
    if not 0 < latent_dim < num_dims:
        raise UserError(f"latent_dim must be in 1 .. {num_dims - 1} (the data has {num_dims} dims), got {latent_dim}")
    mean = u.mean(axis=0)
    covariance = np.cov(u, rowvar=False, bias=True) + extra_variance * np.eye(num_dims)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    variance = max(float(eigenvalues[latent_dim:].mean()), 1e-12)
    weights = eigenvectors[:, :latent_dim] * np.sqrt(np.maximum(eigenvalues[:latent_dim] - variance, 0.0))
    return mean, weights, np.sqrt(variance)


@register
class PPCA(DensityModel):
    """Probabilistic PCA with `latent_dim` components.

    Args:
      data_spec: the `DataSpec` (unconditional).
      latent_dim: L, the number of components.
      initialization: "closed_form" (the maximum-likelihood fit of the training split,
        set before the first epoch) or "random".
      dequantization_samples: K of `log_prob` on discrete data.
      **kwargs: `keras.Model` arguments (`name`).
    """

    family = "ppca"
    has_latent = True
    stochastic_encoder = True

    def __init__(self, data_spec, latent_dim=8, initialization="closed_form", dequantization_samples=4, **kwargs):
        super().__init__(data_spec, dequantization_samples=dequantization_samples, **kwargs)
        self.latent_dim = int(latent_dim)
        self.initialization = initialization
        num_dims = self.data_spec.num_dims
        if initialization not in INITIALIZATIONS:
            raise UserError(f"unknown initialization {initialization!r}; valid: {list(INITIALIZATIONS)}")
        if self.data_spec.conditional:
            raise UserError("PPCA is unconditional: use a dataset without classes (or a conditional VAE)")
        if not 0 < self.latent_dim < num_dims:
            raise UserError(f"latent_dim must be in 1 .. {num_dims - 1} (the data has {num_dims} dims), "
                            f"got {latent_dim}")
        self.mean = self.add_weight(name="mean", shape=[num_dims], initializer="zeros")
        self.weights_matrix = self.add_weight(name="weights", shape=[num_dims, self.latent_dim],
                                              initializer=keras.initializers.RandomNormal(stddev=0.1))
        self.raw_noise_scale = self.add_weight(name="raw_noise_scale", shape=[], initializer="zeros")

    @property
    def latent_shape(self):
        return (self.latent_dim,)

    @property
    def noise_scale(self):
        """sigma, softly bounded so no step can take it to zero or infinity."""
        return distributions.bounded_scale(self.raw_noise_scale)

    def initialize_from_data(self, split):
        if self.initialization != "closed_form":
            return
        x = np.asarray(split.x, np.float64)
        extra_variance = 0.0
        if self.data_spec.is_discrete:
            levels = self.data_spec.levels
            x = (x + 0.5) / levels  # bin centres; the noise adds its variance below
            extra_variance = 1.0 / (12.0 * levels ** 2)
        mean, weights, scale = closed_form_fit(x, self.latent_dim, extra_variance)
        self.set_parameters(mean, weights, scale)

    def set_parameters(self, mean, weights, noise_scale):
        """Sets mu, W and sigma (e.g. from `closed_form_fit`)."""
        self.mean.assign(np.asarray(mean, np.float32))
        self.weights_matrix.assign(np.asarray(weights, np.float32))
        self.raw_noise_scale.assign(distributions.inverse_bounded_scale(float(noise_scale)))

    # === Densities ===
    def marginal(self):
        """The exact marginal N(mu, W W^T + sigma^2 I) on the model's data space."""
        return tfd.MultivariateNormalDiagPlusLowRankCovariance(
            loc=self.mean, cov_diag_factor=tf.fill([self.data_spec.num_dims], self.noise_scale ** 2),
            cov_perturb_factor=self.weights_matrix)

    def _unit_log_prob(self, u, condition):
        return self.marginal().log_prob(tf.reshape(u, [-1, self.data_spec.num_dims]))

    def call(self, inputs, training=False):
        x, _ = self._split(inputs)
        return self.log_prob(x)

    # === Latent space ===
    def _inverse_m(self):
        w = self.weights_matrix
        m = tf.matmul(w, w, transpose_a=True) + self.noise_scale ** 2 * tf.eye(self.latent_dim)
        return tf.linalg.inv(m)

    def posterior_covariance(self):
        """sigma^2 M^-1 `[L, L]`: the same for every row."""
        return self.noise_scale ** 2 * self._inverse_m()

    def posterior(self, x, condition=None):
        """(mean `[B, L]`, per-dimension standard deviation `[B, L]`) of z | x."""
        u = tf.reshape(self._to_model_space(self._check_x(x)), [-1, self.data_spec.num_dims])
        mean = tf.matmul(u - self.mean, tf.matmul(self.weights_matrix, self._inverse_m()))
        scale = tf.sqrt(tf.linalg.diag_part(self.posterior_covariance()))
        return mean, tf.broadcast_to(scale, tf.shape(mean))

    def encode(self, x, condition=None, seed=None):
        """The posterior mean, or with a per-row `seed` a draw from the full posterior."""
        mean, _ = self.posterior(x)
        if seed is None:
            return mean
        cholesky = tf.linalg.cholesky(self.posterior_covariance())
        return mean + tf.matmul(per_row_normal(seed, [self.latent_dim], salt=2), cholesky, transpose_b=True)

    def decode(self, z, condition=None):
        """W z + mu, the mean of u | z, in raw form (quantized for discrete data)."""
        u = tf.matmul(tf.convert_to_tensor(z, tf.float32), self.weights_matrix, transpose_b=True) + self.mean
        return self._to_raw(tf.reshape(u, [-1, *self.data_spec.event_shape]))

    def sample(self, seed, temperature=1.0, condition=None):
        """z and the noise keyed by the row's seed, both scaled by `temperature`."""
        temperature = tf.reshape(tf.convert_to_tensor(temperature, tf.float32), [-1, 1])
        z = per_row_normal(seed, [self.latent_dim]) * temperature
        noise = per_row_normal(seed, [self.data_spec.num_dims], salt=1) * temperature * self.noise_scale
        u = tf.matmul(z, self.weights_matrix, transpose_b=True) + self.mean + noise
        return self._to_raw(tf.reshape(u, [-1, *self.data_spec.event_shape]))

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, initialization=self.initialization)
        return config
