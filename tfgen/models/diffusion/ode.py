"""Likelihoods through the probability-flow ODE (Song et al. 2021, arXiv:2011.13456).

A diffusion or score model perturbs data as x_t = alpha(t) x_0 + sigma(t) noise, t in
[0, 1]. The ODE

    dx/dt = f(t) x - 1/2 g(t)^2 score(x, t),
    f = d log alpha / dt,   g^2 = d sigma^2 / dt - 2 f sigma^2,

moves x_t along the same marginals as the SDE, deterministically, so it is an invertible
flow from the data end t0 to the prior at t = 1 and, by the instantaneous change of
variables (Chen et al. 2018, arXiv:1806.07366),

    log p_t0(x) = log p_1(x_1) + integral_t0^1 div(dx/dt)(x_t, t) dt.

Two perturbations, one per family:

- `VarianceExploding` (the score model, NCSN): alpha = 1, sigma(t) = sigma_min
  (sigma_max / sigma_min)^t, the continuous limit of the geometric ladder of noise levels;
  prior N(0, sigma_max^2 I).
- `VariancePreserving` (DDPM): alpha^2 + sigma^2 = 1 with alpha_bar interpolated
  log-linearly between the discrete schedule's steps; the score is -epsilon / sigma;
  prior N(0, I).

The divergence is exact (one gradient per dimension, for low dimensions) or Hutchinson's
estimate v^T (d f / d x) v (Grathwohl et al. 2019, arXiv:1810.01367) with Rademacher
probes v drawn from a constant seed, the same for every row and every call: the estimate
is deterministic and a row's value never depends on its batch. Solvers: `rk4`, the
classical Runge-Kutta method on a fixed grid (uniform in t, so uniform in log sigma for
VE), in a `tf.while_loop`; `dopri5`, TFP's adaptive Dormand-Prince
(`tfp.math.ode.DormandPrince`) at a relative and absolute tolerance.

Example:

    sde = VarianceExploding(sigma_min=0.01, sigma_max=5.0)
    log_prob = probability_flow_log_prob(x, lambda x, t: score(x, sde.sigma(t)), sde)
"""

import math

from tfgen.backend import tf, tfp
from tfgen.errors import UserError

SOLVERS = ("rk4", "dopri5")
DIVERGENCES = ("auto", "exact", "hutchinson")
#: `divergence: auto` is exact up to this many dimensions (one gradient each).
EXACT_DIVERGENCE_MAX_DIMS = 16
#: The seed of Hutchinson's probes.
PROBE_SEED = (20210, 2011)


class VarianceExploding:
    """x_t = x_0 + sigma(t) noise, sigma(t) = sigma_min (sigma_max / sigma_min)^t.

    Args:
      sigma_min: sigma at t = 0 (the smallest noise level).
      sigma_max: sigma at t = 1 (the largest).
    """

    def __init__(self, sigma_min, sigma_max):
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.log_ratio = math.log(self.sigma_max / self.sigma_min)

    def sigma(self, t):
        return self.sigma_min * tf.exp(t * self.log_ratio)

    def drift(self, x, t, score):
        """dx/dt = -1/2 d sigma^2/dt score = -sigma^2 log(sigma_max / sigma_min) score."""
        sigma = self.sigma(t)[:, None]
        return -(sigma ** 2) * self.log_ratio * score(x, t)

    def prior_log_prob(self, z):
        return _normal_log_prob(z, self.sigma_max)


class VariancePreserving:
    """x_t = sqrt(alpha_bar(t)) x_0 + sqrt(1 - alpha_bar(t)) noise for a discrete schedule
    beta_1 .. beta_T: step k sits at t = k / T and log alpha_bar is linear between steps,
    so f(t) = 1/2 d log alpha_bar / dt is constant on each step and g^2 = -2 f.

    Args:
      betas: the T betas of the schedule.
    """

    def __init__(self, betas):
        betas = tf.convert_to_tensor(betas, tf.float32)
        self.num_steps = int(betas.shape[0])
        log_alphas = tf.math.log1p(-betas)
        # log alpha_bar at t = k / T, k = 0 .. T
        self.log_alpha_bars = tf.concat([[0.0], tf.cumsum(log_alphas)], 0)
        self.log_alphas = log_alphas

    def _position(self, t):
        position = tf.clip_by_value(t * self.num_steps, 0.0, float(self.num_steps))
        index = tf.minimum(tf.cast(tf.floor(position), tf.int32), self.num_steps - 1)
        return position, index

    def log_alpha_bar(self, t):
        position, index = self._position(t)
        fraction = position - tf.cast(index, tf.float32)
        return tf.gather(self.log_alpha_bars, index) + fraction * tf.gather(self.log_alphas, index)

    def sigma(self, t):
        return tf.sqrt(-tf.math.expm1(self.log_alpha_bar(t)))

    def drift(self, x, t, score):
        """dx/dt = f x - 1/2 g^2 score = f (x + score), f = T log(1 - beta_k) / 2."""
        _, index = self._position(t)
        f = (0.5 * self.num_steps * tf.gather(self.log_alphas, index))[:, None]
        return f * (x + score(x, t))

    def prior_log_prob(self, z):
        return _normal_log_prob(z, 1.0)


def _normal_log_prob(z, scale):
    dims = tf.cast(tf.shape(z)[1], tf.float32)
    return (-0.5 * tf.reduce_sum(tf.square(z / scale), axis=1)
            - dims * (math.log(scale) + 0.5 * math.log(2 * math.pi)))


def check_solver_settings(solver, divergence, steps, rtol, atol):
    """The ODE settings a model stores, checked (one-line errors naming the setting)."""
    if solver not in SOLVERS:
        raise UserError(f"ode_solver must be one of {list(SOLVERS)}, got {solver!r}")
    if divergence not in DIVERGENCES:
        raise UserError(f"ode_divergence must be one of {list(DIVERGENCES)}, got {divergence!r}")
    if int(steps) < 1:
        raise UserError(f"ode_steps must be >= 1, got {steps!r}")
    if not (rtol > 0 and atol > 0):
        raise UserError(f"ode_rtol and ode_atol must be > 0, got {rtol!r}, {atol!r}")


def _divergence_fn(divergence, num_dims):
    """(drift function, x, t) -> (drift, its divergence per row)."""
    if divergence == "auto":
        divergence = "exact" if num_dims <= EXACT_DIVERGENCE_MAX_DIMS else "hutchinson"
    if divergence == "exact":
        def exact(drift, x, t):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x)
                dx = drift(x, t)
                columns = [dx[:, i] for i in range(num_dims)]
            trace = tf.add_n([tape.gradient(columns[i], x)[:, i] for i in range(num_dims)])
            del tape
            return dx, trace
        return exact

    probe = tf.sign(tf.random.stateless_uniform([1, num_dims], seed=PROBE_SEED) - 0.5)

    def hutchinson(drift, x, t):
        with tf.GradientTape() as tape:
            tape.watch(x)
            dx = drift(x, t)
            projected = tf.reduce_sum(dx * probe)
        return dx, tf.reduce_sum(tape.gradient(projected, x) * probe, axis=1)
    return hutchinson


def probability_flow_log_prob(x, score, sde, t0=0.0, solver="rk4", steps=64, rtol=1e-5, atol=1e-5,
                              divergence="auto"):
    """log p_t0(x) `[B]` in nats under the probability-flow ODE of `sde` and `score`.

    Args:
      x: `[B, D]` float32 points (flatten images first).
      score: `(x [B, D], t [B]) -> [B, D]`, the model's estimate of grad log p_t(x).
      sde: `VarianceExploding` or `VariancePreserving`.
      t0: where the data end of the integral sits (VP: above 0, where sigma vanishes).
      solver: "rk4" (fixed grid of `steps`) or "dopri5" (adaptive, `rtol`/`atol`).
      divergence: "exact", "hutchinson" or "auto" (exact up to
        EXACT_DIVERGENCE_MAX_DIMS dimensions).
    """
    x = tf.convert_to_tensor(x, tf.float32)
    trace_fn = _divergence_fn(divergence, int(x.shape[1]))

    def dynamics(t, state):
        z, _ = state
        # t per row, shaped like z's rows so the loop keeps z's static shape.
        dz, trace = trace_fn(lambda z, t: sde.drift(z, t, score), z, t * tf.ones_like(z[:, 0]))
        return [dz, trace]

    initial = [x, tf.zeros_like(x[:, 0])]
    if solver == "dopri5":
        # Only the end state is needed, so no gradients through the solver (an export
        # holds no custom gradients).
        results = tfp.math.ode.DormandPrince(rtol=rtol, atol=atol).solve(
            dynamics, t0, initial, solution_times=[1.0])
        z, delta = (tf.stop_gradient(s[-1]) for s in results.states)
    else:
        z, delta = _rk4(dynamics, t0, 1.0, initial, steps)
    return sde.prior_log_prob(z) + delta


def _rk4(dynamics, t0, t1, state, steps):
    """The classical fourth-order Runge-Kutta method on `steps` equal steps, in a loop."""
    h = (t1 - t0) / steps

    def add(state, derivative, scale):
        return [s + scale * d for s, d in zip(state, derivative)]

    def body(i, *state):
        state = list(state)
        t = t0 + tf.cast(i, tf.float32) * h
        k1 = dynamics(t, state)
        k2 = dynamics(t + h / 2, add(state, k1, h / 2))
        k3 = dynamics(t + h / 2, add(state, k2, h / 2))
        k4 = dynamics(t + h, add(state, k3, h))
        update = [(a + 2 * b + 2 * c + d) / 6 for a, b, c, d in zip(k1, k2, k3, k4)]
        return [i + 1] + add(state, update, h)

    _, *state = tf.while_loop(lambda i, *_: i < steps, body, [tf.constant(0)] + list(state))
    return state
