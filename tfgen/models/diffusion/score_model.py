"""The noise-conditional score network (NCSN; Song & Ermon 2019, arXiv:1907.05600).

One network s(x, sigma) estimates the score grad log p_sigma(x) of the data smoothed by
N(0, sigma^2 I) at every level of a geometric ladder sigma_1 = sigma_max > ... >
sigma_L = sigma_min. It is `network(x, log sigma) / sigma` (the network sees log sigma
as its float "time" and predicts a unit-scale quantity; Song & Ermon 2020,
arXiv:2006.09011), trained by denoising score matching with the sigma^2 weighting,

    loss = 1/2 E_{sigma, n ~ N(0, I)} sigma^2 || s(x + sigma n, sigma) + n / sigma ||^2
         = 1/2 E || network(x + sigma n, log sigma) + n ||^2,

with sigma drawn from the ladder (`training_noise: ladder`) or log-uniformly between
its ends (`log_uniform`, the continuous VE SDE the likelihood integrates over).

Sampling is annealed Langevin dynamics (Algorithm 1 of the paper): from x ~ N(0,
sigma_1^2 I), at each level i, `steps` updates

    x <- x + alpha_i / 2 s(x, sigma_i) + temperature sqrt(alpha_i) z,
    alpha_i = step_size sigma_i^2 / sigma_L^2,

then (`denoise`) one Tweedie step x + sigma_L^2 s(x, sigma_L) (Jolicoeur-Martineau et al.
2021, arXiv:2009.05475). The whole loop is one `tf.while_loop`; every z of a row is
drawn up front from the row's seed (`tfgen.random`; steps x L x D floats per row), and a
row updates only while its own step count lasts, so a row's sample never depends on its
batch. `steps` (per level) and `step_size` are
inputs of the exported `sample` with the model's defaults; `steps` above
`max_langevin_steps`, <= 0, or a step size that is non-finite or <= 0 is an
INVALID_ARGUMENT naming the input.

`log_prob` is the probability-flow ODE of the variance-exploding SDE
(`tfgen.models.diffusion.ode`; `LogProbKind.PROBABILITY_FLOW`): the density of the data
smoothed by sigma_min. Discrete data (images on levels) are dequantized into the unit
cube and mapped to [-1, 1] for the network, with K fixed draws in `log_prob` like every
`DensityModel`. Sampling and the likelihood use the EMA of the network's weights
(`tfgen.models.ema`).
"""

import math

import numpy as np

from tfgen.backend import tf
from tfgen.contract import LogProbKind
from tfgen.errors import UserError
from tfgen.metrics.bits import evaluate_bits_per_dim
from tfgen.models import ema
from tfgen.models.base import GenerativeModel, register
from tfgen.models.diffusion import ode
from tfgen.models.diffusion.networks import MLPDenoiser
from tfgen.models.likelihood import DensityModel
from tfgen.random import per_row_normal, per_row_uniform
from tfgen.serialization import attribute_config

TRAINING_NOISE = ("ladder", "log_uniform")


def geometric_ladder(sigma_max, sigma_min, num_levels):
    """sigma_1 = sigma_max > ... > sigma_L = sigma_min, a geometric sequence (float32)."""
    return np.geomspace(sigma_max, sigma_min, num_levels).astype(np.float32)


@register
class NCSN(DensityModel):
    """A noise-conditional score network; see the module docstring.

    Args:
      data_spec: the `DataSpec`.
      sigma_max: sigma_1, the largest noise level (Song & Ermon 2020: about the largest
        distance between training points).
      sigma_min: sigma_L, the smallest.
      num_levels: L, the levels of the ladder.
      training_noise: "ladder" (sigma uniform over the L levels) or "log_uniform".
      hidden_units: widths of the MLP's hidden layers (`networks.MLPDenoiser`).
      embedding_dim: width of its log-sigma (and class) embedding.
      ema_decay: decay of the weights' EMA that sampling and log_prob use (0: none).
      langevin_steps: default steps per level of `sample`.
      langevin_step_size: default epsilon of `sample`.
      max_langevin_steps: the cap on `sample`'s steps per level.
      denoise: end sampling with the Tweedie step x + sigma_L^2 s(x, sigma_L).
      ode_solver: "rk4" (fixed `ode_steps`) or "dopri5" (adaptive, `ode_rtol`/`ode_atol`).
      ode_steps, ode_rtol, ode_atol: the solver's settings.
      ode_divergence: "exact", "hutchinson" (fixed probes) or "auto".
      dequantization_samples: K of `log_prob` on discrete data (`DensityModel`).
      **kwargs: `keras.Model` arguments (`name`).

    Example:

        model = NCSN({"event_shape": [2]}, sigma_max=4.0, sigma_min=0.02)
        model.compile(keras.optimizers.Adam(1e-3))
        model.fit(dataset, epochs=10)
        x = model.sample(tf.range(100, dtype=tf.int64), steps=tf.fill([100], 50))
    """

    family = "score"
    CONFIG_KEYS = ("sigma_max", "sigma_min", "num_levels", "training_noise", "hidden_units", "embedding_dim",
                   "ema_decay", "langevin_steps", "langevin_step_size", "max_langevin_steps", "denoise",
                   "ode_solver", "ode_steps", "ode_rtol", "ode_atol", "ode_divergence")

    def __init__(self, data_spec, sigma_max=5.0, sigma_min=0.01, num_levels=10, training_noise="ladder",
                 hidden_units=(128, 128, 128), embedding_dim=64, ema_decay=0.999, langevin_steps=100,
                 langevin_step_size=2e-5, max_langevin_steps=1000, denoise=True, ode_solver="rk4", ode_steps=64,
                 ode_rtol=1e-5, ode_atol=1e-5, ode_divergence="auto", dequantization_samples=4, **kwargs):
        super().__init__(data_spec, dequantization_samples=dequantization_samples, **kwargs)
        spec = self.data_spec
        # === Hyperparameters ===
        self.sigma_max, self.sigma_min, self.num_levels = float(sigma_max), float(sigma_min), int(num_levels)
        if not (math.isfinite(self.sigma_max) and 0 < self.sigma_min < self.sigma_max) or self.num_levels < 2:
            raise UserError(f"the noise ladder needs 0 < sigma_min < sigma_max (finite) and num_levels >= 2, "
                            f"got sigma_min={sigma_min!r}, sigma_max={sigma_max!r}, num_levels={num_levels!r}")
        if training_noise not in TRAINING_NOISE:
            raise UserError(f"training_noise must be one of {list(TRAINING_NOISE)}, got {training_noise!r}")
        self.training_noise = training_noise
        self.hidden_units = [int(u) for u in hidden_units]
        self.embedding_dim = int(embedding_dim)
        self.ema_decay = ema.checked_decay(ema_decay)
        self.max_langevin_steps = int(max_langevin_steps)
        self.langevin_steps = int(langevin_steps)
        if not 1 <= self.langevin_steps <= self.max_langevin_steps:
            raise UserError(f"langevin_steps must be in 1 .. max_langevin_steps={self.max_langevin_steps}, "
                            f"got {langevin_steps!r}")
        self.langevin_step_size = float(langevin_step_size)
        if not (math.isfinite(self.langevin_step_size) and self.langevin_step_size > 0):
            raise UserError(f"langevin_step_size must be finite and > 0, got {langevin_step_size!r}")
        self.denoise = bool(denoise)
        ode.check_solver_settings(ode_solver, ode_divergence, ode_steps, ode_rtol, ode_atol)
        self.ode_solver, self.ode_divergence = ode_solver, ode_divergence
        self.ode_steps, self.ode_rtol, self.ode_atol = int(ode_steps), float(ode_rtol), float(ode_atol)
        self.sigmas = geometric_ladder(self.sigma_max, self.sigma_min, self.num_levels)
        self.sde = ode.VarianceExploding(self.sigma_min, self.sigma_max)

        # === Layers ===
        def network(name):
            return MLPDenoiser(spec.event_shape, self.hidden_units, self.embedding_dim,
                               spec.num_classes if spec.conditional else None, name=name)

        self.network = network("score_network")
        # Written only by `tfgen.models.ema`; sampling and log_prob read it.
        self.ema_network = network("ema_score_network") if self.ema_decay else None
        self._build_networks()

    def _build_networks(self):
        condition = tf.zeros([1], tf.int32) if self.data_spec.conditional else None
        x, t = tf.zeros([1, *self.data_spec.event_shape]), tf.zeros([1])
        self.network(x, t, condition)
        if self.ema_network is not None:
            self.ema_network(x, t, condition)
            ema.start(self.ema_network, self.network)

    # === Capabilities ===
    log_prob_kind = LogProbKind.PROBABILITY_FLOW

    @property
    def sample_inputs(self):
        """The exported sample's Langevin settings and their defaults."""
        # Rounded to float32, as the SignatureDef stores the step_size default.
        return {"steps": self.langevin_steps, "step_size": float(np.float32(self.langevin_step_size))}

    @property
    def _sampling_network(self):
        return self.ema_network if self.ema_network is not None else self.network

    # === Data <-> the network's space ===
    def _to_network_space(self, u):
        """Continuous data as it is; the unit cube of dequantized levels to [-1, 1]."""
        return 2.0 * u - 1.0 if self.data_spec.is_discrete else u

    def score(self, y, sigma, condition=None, network=None):
        """s(y, sigma) `[B, *event]` in the network's space; `sigma` `[B]`."""
        sigma = tf.convert_to_tensor(sigma, tf.float32)
        output = (network or self._sampling_network)(y, tf.math.log(sigma), condition)
        return output / tf.reshape(sigma, [-1] + [1] * len(self.data_spec.event_shape))

    # === Likelihood ===
    def _unit_log_prob(self, u, condition):
        """The probability-flow ODE's log density of u (`DensityModel`'s space)."""
        event_shape = self.data_spec.event_shape
        y = tf.reshape(self._to_network_space(u), [-1, self.data_spec.num_dims])

        def score(y, t):
            return tf.reshape(self.score(tf.reshape(y, [-1, *event_shape]), self.sde.sigma(t), condition),
                              [-1, self.data_spec.num_dims])

        log_prob = ode.probability_flow_log_prob(
            y, score, self.sde, solver=self.ode_solver, steps=self.ode_steps, rtol=self.ode_rtol,
            atol=self.ode_atol, divergence=self.ode_divergence)
        if self.data_spec.is_discrete:  # y = 2u - 1
            log_prob += self.data_spec.num_dims * math.log(2.0)
        return log_prob

    # === Sampling ===
    def _checked_settings(self, seed, steps, step_size):
        rows = tf.shape(seed)
        steps = tf.broadcast_to(tf.cast(self.langevin_steps if steps is None else steps, tf.int32), rows)
        step_size = tf.broadcast_to(
            tf.cast(self.langevin_step_size if step_size is None else step_size, tf.float32), rows)
        checks = [
            tf.debugging.assert_positive(steps, message="steps: Langevin steps per level must be >= 1"),
            tf.debugging.assert_less_equal(
                steps, self.max_langevin_steps,
                message=f"steps: at most {self.max_langevin_steps} Langevin steps per level "
                        "(max_langevin_steps, the cap of this model)"),
            tf.debugging.assert_all_finite(step_size, "step_size: must be finite"),
            tf.debugging.assert_positive(step_size, message="step_size: must be > 0"),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(steps), tf.identity(step_size)

    def sample(self, seed, temperature=1.0, condition=None, steps=None, step_size=None):
        """One sample per int64 seed by annealed Langevin dynamics (module docstring).

        Args:
          seed: int64 `[B]`.
          temperature: scales the injected noise z (`[B]` or a scalar).
          condition: int32 `[B]` class ids of a conditional model.
          steps: int32 `[B]` (or scalar) steps per level; default `langevin_steps`.
          step_size: float32 `[B]` (or scalar) epsilon; default `langevin_step_size`.
        """
        seed = tf.cast(seed, tf.int64)
        if condition is not None:
            condition = self._check_condition(condition)
        steps, step_size = self._checked_settings(seed, steps, step_size)
        temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), tf.shape(seed))
        event_shape = list(self.data_spec.event_shape)
        per_row = [-1] + [1] * len(event_shape)
        sigmas = tf.constant(self.sigmas)
        most_steps = tf.reduce_max(steps)
        # Every z of the loop in one draw per row, [B, steps, L, *event], step-major: a
        # row's draws for its first s steps are the same whatever the batch's longest row
        # (`per_row_uniform`), made normal by the inverse CDF at bin midpoints (never 0).
        uniforms = per_row_uniform(seed, [most_steps, self.num_levels, *event_shape], salt=1)
        noise = tf.math.ndtri(uniforms + 2.0 ** -24)

        def update(n, y):
            level, k = n // most_steps, n % most_steps
            sigma = sigmas[level]
            alpha = step_size * tf.square(sigma / self.sigma_min)
            z = noise[:, k, level]
            score = self.score(y, tf.fill(tf.shape(seed), sigma), condition)
            moved = y + tf.reshape(alpha / 2, per_row) * score \
                + tf.reshape(tf.sqrt(alpha) * temperature, per_row) * z
            return n + 1, tf.where(tf.reshape(k < steps, per_row), moved, y)

        y = per_row_normal(seed, event_shape, salt=0) * self.sigma_max
        _, y = tf.while_loop(lambda n, _: n < self.num_levels * most_steps, update, (tf.constant(0), y))
        if self.denoise:
            y += self.sigma_min ** 2 * self.score(y, tf.fill(tf.shape(seed), self.sigma_min), condition)
        if self.data_spec.is_discrete:
            return self._to_raw((y + 1.0) / 2.0)
        return y

    # === Training ===
    def _training_sigmas(self, rows, seed):
        if self.training_noise == "ladder":
            level = tf.random.stateless_uniform([rows], seed, 0, self.num_levels, tf.int32)
            return tf.gather(tf.constant(self.sigmas), level)
        log_sigma = tf.random.stateless_uniform([rows], seed, math.log(self.sigma_min), math.log(self.sigma_max))
        return tf.exp(log_sigma)

    def denoising_loss(self, x, condition, seed, network=None, training=False):
        """Denoising score matching with sigma^2 weighting, `[B]` (module docstring);
        draws (dequantization, noise levels, perturbations) keyed by the stateless
        `seed` (two int64s: `training_noise_seed`)."""
        seeds = tf.random.experimental.stateless_split(seed, 3)
        noise = tf.random.stateless_uniform(tf.shape(x), seeds[0]) if self.data_spec.is_discrete else None
        y = self._to_network_space(self._to_model_space(self._check_x(x), noise))
        sigma = self._training_sigmas(tf.shape(y)[0], seeds[1])
        n = tf.random.stateless_normal(tf.shape(y), seeds[2])
        per_row = tf.reshape(sigma, [-1] + [1] * len(self.data_spec.event_shape))
        predicted = (network or self.network)(y + per_row * n, tf.math.log(sigma), condition, training=training)
        return 0.5 * tf.reduce_sum(tf.reshape(tf.square(predicted + n), [tf.shape(y)[0], -1]), axis=1)

    def call(self, inputs, training=False):
        x, condition = self._split(inputs)
        return self.denoising_loss(x, condition, self.training_noise_seed(0), training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        x, condition = self._split(data)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(self.denoising_loss(x, condition, self.training_noise_seed(0), training=True))
        self.minimize(tape, loss)
        if self.ema_network is not None:
            ema.update(self.ema_network, self.network, self.ema_decay, self.optimizer.iterations)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        x, condition = self._split(data)
        loss = self.denoising_loss(x, condition, self.training_noise_seed(-1), network=self._sampling_network)
        self.loss_tracker.update_state(tf.reduce_mean(loss))
        return {"loss": self.loss_tracker.result()}

    def evaluate_held_out(self, split, batch_size=256, draws=1, seed=0):
        """The denoising loss and the probability-flow bits/dim of the split."""
        figures = GenerativeModel.evaluate_held_out(self, split, batch_size, draws, seed)
        figures.update(evaluate_bits_per_dim(self, split, self.data_spec, batch_size=batch_size,
                                             num_noise_samples=draws, seed=seed))
        return figures

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update(attribute_config(self, self.CONFIG_KEYS), hidden_units=list(self.hidden_units))
        return config

