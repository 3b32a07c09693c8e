"""Denoising diffusion probabilistic models (Ho et al. 2020, arXiv:2006.11239) with DDIM
sampling (Song et al. 2021, arXiv:2010.02502) and classifier-free guidance (Ho &
Salimans 2022, arXiv:2207.12598).

The forward process noises data x_0 (discrete data scaled to [-1, 1]) in T steps,

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   abar_t = prod_{s <= t} (1 - beta_s),

with beta from a schedule (`schedules.py`: linear, cosine). A network eps(x_t, t, y)
(`networks.py`: U-Net for images, MLP for vectors) predicts the noise; training
minimizes the simple loss E ||eps - eps(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t, y)||^2
over t ~ U{1..T}. A conditional model replaces the class by the null class with
probability `label_dropout`, so the same network also predicts eps(x_t, t, null).

Sampling (`sample`) is DDIM's update on an evenly spaced subsequence of S = `steps`
timesteps, per row, in one `tf.while_loop`:

    x0 = clip((x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)),
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s),
    x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps + sigma z,

s the previous timestep of the subsequence. eta = 0 is deterministic DDIM; S = T with
eta = 1 is DDPM's ancestral sampler with the posterior variance beta~_t. Guidance:
eps = eps(null) + w (eps(y) - eps(null)). x_T and every z are keyed by the row's seed
and the row's step index, so a row's sample does not depend on its batch.

`log_prob` is the variational bound (LogProbKind.VARIATIONAL_BOUND, Ho et al. eq. 5):

    log p(x_0) >= -KL(q(x_T|x_0) || N(0, I)) - sum_{t=2}^T KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
                  + log p(x_0 | x_1),

with p(x_{t-1} | x_t) = N(mu(x_t, eps), beta~_t) and a decoder p(x_0 | x_1) =
N(mu(x_1, eps), beta_1) quantized to the levels (`distributions.discretized_normal`;
a density on continuous data). Each term uses one draw of x_t from a constant seed
(the same noise for every row), so the bound is deterministic and row-independent; the
sum over t runs in a `tf.while_loop` over chunks of timesteps, one network pass per
chunk over its rows x timesteps (about `bound_rows_per_pass`), so memory does not grow
with T and a few rows do not pay for T - 1 small passes. Sampling and the bound use the
EMA of the network's weights.

`classify` (the export's Bayes classifier) needs log p(x | y) for every class, T passes
each with the full bound. It takes instead a stratified estimate of the same bound
(`classify_log_prob`, in the style of diffusion classifiers: Li et al. 2023,
arXiv:2303.16203; Clark & Jaini 2023, arXiv:2303.15233): the prior and decoder terms
exact, the T - 1 denoising KLs replaced by K = `classify_terms` of them, the midpoint of
each of K strata of stride s = T // K, each weighted (T - 1) / K. The noise of a term is
keyed by t alone, so every class sees the same x_t (common random numbers) and the class
differences, which decide the classification, keep little variance. The full bound and
the estimate are one loop whose stride is an argument (s = 1: every term), so the
exported graph holds the loop and the network once.
"""

import numpy as np

from tfgen import distributions
from tfgen.backend import keras, tf
from tfgen.contract import DEFAULT_DIFFUSION_STEPS, LogProbKind
from tfgen.errors import UserError
from tfgen.metrics.bits import evaluate_bits_per_dim
from tfgen.models import ema
from tfgen.models.base import GenerativeModel, register
from tfgen.models.diffusion import networks, schedules
from tfgen.models.symmetric_range import from_symmetric, to_symmetric
from tfgen.random import per_row_normal
from tfgen.serialization import attribute_config

NETWORKS = ("unet", "mlp")
#: The constant seed of the bound's noise draws.
BOUND_SEED = 20200619
#: Default rows x timesteps of one network pass of the bound.
BOUND_ROWS_PER_PASS = 64


@register
class DDPM(GenerativeModel):
    """A DDPM; see the module docstring.

    Args:
      data_spec: the `DataSpec`.
      timesteps: T, the number of noising steps (the cap of `sample`'s `steps`); at
        least the signature's default steps (50).
      schedule: "linear" or "cosine".
      network: "unet" (images) or "mlp"; default unet for images, mlp otherwise.
      hidden_units: "mlp": hidden widths.
      filters, channel_multipliers, blocks_per_level, attention, groups, dropout:
        "unet": see `networks.UNet`.
      embedding_dim: width of the time (and class) embedding.
      label_dropout: probability of training a row with the null class (conditional
        data), which classifier-free guidance needs.
      ema_decay: decay of the weights' EMA that sampling and the bound use (0: none).
      clip_denoised: clip the sampler's x0 prediction to the data's range ([-1, 1] for
        discrete data in unit space; [low, high] for continuous data with a range).
      classify_terms: K, the denoising terms of the bound that `classify_log_prob` (the
        export's classify) evaluates, of T - 1 (module docstring); K >= T - 1: all of them.
      bound_rows_per_pass: the bound evaluates this many rows x timesteps per network
        pass (at least one timestep): batch-1 passes are slow per row; larger ones cost
        memory. It changes how fast the bound is, not its value (up to float rounding).
      **kwargs: `GenerativeModel` arguments (`noise_seed`) and `keras.Model`'s (`name`).
    """

    family = "diffusion"
    log_prob_kind = LogProbKind.VARIATIONAL_BOUND
    CONFIG_KEYS = ("timesteps", "schedule", "network", "hidden_units", "filters", "channel_multipliers",
                   "blocks_per_level", "attention", "groups", "dropout", "embedding_dim", "label_dropout",
                   "ema_decay", "clip_denoised", "classify_terms", "bound_rows_per_pass")

    def __init__(self, data_spec, timesteps=1000, schedule="linear", network=None, hidden_units=(256, 256, 256),
                 filters=32, channel_multipliers=(1, 2), blocks_per_level=1, attention=True, groups=8, dropout=0.0,
                 embedding_dim=128, label_dropout=0.1, ema_decay=0.999, clip_denoised=True,
                 classify_terms=50, bound_rows_per_pass=BOUND_ROWS_PER_PASS, **kwargs):
        super().__init__(data_spec, **kwargs)
        spec = self.data_spec
        # === Hyperparameters ===
        self.timesteps = int(timesteps)
        if self.timesteps < DEFAULT_DIFFUSION_STEPS:
            raise UserError(f"timesteps must be >= {DEFAULT_DIFFUSION_STEPS} (the sample signature's default "
                            f"steps), got {timesteps!r}")
        self.schedule = schedule
        betas = schedules.betas(schedule, self.timesteps)
        self.network = network or ("unet" if spec.kind == "image" else "mlp")
        if self.network not in NETWORKS:
            raise UserError(f"unknown DDPM network {self.network!r}; valid: {list(NETWORKS)}")
        self.hidden_units = [int(u) for u in hidden_units]
        self.filters = int(filters)
        self.channel_multipliers = [int(m) for m in channel_multipliers]
        self.blocks_per_level = int(blocks_per_level)
        self.attention = bool(attention)
        self.groups = int(groups)
        self.dropout = float(dropout)
        self.embedding_dim = int(embedding_dim)
        self.label_dropout = float(label_dropout)
        if not 0.0 <= self.label_dropout < 1.0:
            raise UserError(f"label_dropout must be in [0, 1), got {label_dropout!r}")
        self.ema_decay = ema.checked_decay(ema_decay)
        self.clip_denoised = bool(clip_denoised)
        if isinstance(classify_terms, bool) or not isinstance(classify_terms, int) or classify_terms < 1:
            raise UserError(f"classify_terms must be an integer >= 1, got {classify_terms!r}")
        self.classify_terms = classify_terms
        self._classify_stride = self.timesteps // classify_terms if classify_terms < self.timesteps - 1 else 1
        if isinstance(bound_rows_per_pass, bool) or not isinstance(bound_rows_per_pass, int) \
                or bound_rows_per_pass < 1:
            raise UserError(f"bound_rows_per_pass must be an integer >= 1, got {bound_rows_per_pass!r}")
        self.bound_rows_per_pass = bound_rows_per_pass
        # The sampler's x0 prediction is clipped to the data's range: [-1, 1] for discrete
        # data, [low, high] for continuous data that has one.
        if not self.clip_denoised:
            self._x0_range = None
        elif spec.is_discrete:
            self._x0_range = (-1.0, 1.0)
        elif spec.low is not None and spec.high is not None:
            self._x0_range = (float(spec.low), float(spec.high))
        else:
            self._x0_range = None

        # The schedule's constants, computed in float64, held in float32.
        alpha_bar = np.cumprod(1.0 - betas)
        alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
        posterior_variance = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        constant = lambda a: tf.constant(a, tf.float32)  # noqa: E731
        self._betas = constant(betas)
        self._alpha_bar = constant(alpha_bar)
        self._alpha_bar_prev = constant(alpha_bar_prev)
        self._posterior_variance = constant(posterior_variance)
        self._posterior_x0 = constant(np.sqrt(alpha_bar_prev) * betas / (1.0 - alpha_bar))
        self._posterior_xt = constant(np.sqrt(1.0 - betas) * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar))

        # === Layers ===
        num_classes = spec.num_classes if spec.conditional else None
        if self.network == "unet":
            def denoiser(name):
                return networks.UNet(spec.event_shape, self.filters, self.channel_multipliers,
                                     self.blocks_per_level, self.attention, self.groups, self.dropout,
                                     self.embedding_dim, num_classes, name=name)
        else:
            def denoiser(name):
                return networks.MLPDenoiser(spec.event_shape, self.hidden_units, self.embedding_dim, num_classes,
                                            name=name)
        self.denoiser = denoiser("denoiser")
        self.ema_denoiser = denoiser("ema_denoiser") if self.ema_decay else None
        self.tracker = keras.metrics.Mean(name="loss")
        self._traced = {}
        self._denoisers = {}
        self._build_networks()

    def _build_networks(self):
        x = tf.zeros([1, *self.data_spec.event_shape])
        t = tf.zeros([1])
        condition = tf.zeros([1], tf.int32) if self.data_spec.conditional else None
        self.denoiser(x, t, condition)
        if self.ema_denoiser is not None:
            self.ema_denoiser(x, t, condition)
            ema.start(self.ema_denoiser, self.denoiser)

    @property
    def sample_inputs(self):
        """The exported sampler's settings and their defaults: DDIM at
        DEFAULT_DIFFUSION_STEPS steps, deterministic, and no guidance."""
        inputs = {"steps": DEFAULT_DIFFUSION_STEPS, "eta": 0.0}
        if self.data_spec.num_classes:
            inputs["guidance_scale"] = 1.0
        return inputs

    @property
    def metrics(self):
        return [self.tracker]

    def variables_for_optimizer(self, name):
        # Not the EMA network: only `ema.update` writes it.
        return self.denoiser.trainable_variables

    @property
    def _sampling_denoiser(self):
        return self.ema_denoiser if self.ema_denoiser is not None else self.denoiser

    def _gather(self, values, t):
        """values[t] per row, shaped to broadcast against `[B, *event]`."""
        return tf.reshape(tf.gather(values, t), [-1] + [1] * len(self.data_spec.event_shape))

    def _noised(self, x0, t, noise):
        return tf.sqrt(self._gather(self._alpha_bar, t)) * x0 + tf.sqrt(1.0 - self._gather(self._alpha_bar, t)) * noise

    # === Contract ===
    def call(self, inputs, training=False):
        x, condition = self._split(inputs)
        u = to_symmetric(x, self.data_spec)
        return self.denoiser(u, tf.zeros(tf.shape(u)[:1]), condition, training=training)

    def sample(self, seed, temperature=1.0, condition=None, steps=DEFAULT_DIFFUSION_STEPS, eta=0.0,
               guidance_scale=1.0):
        """One sample per int64 seed by DDIM with `steps` (1 .. timesteps) and `eta`
        (in [0, 1]), each per row or one for all; `guidance_scale` (finite) for
        conditional models. Out-of-range inputs fail with InvalidArgumentError naming
        the input."""
        return self._sampled(seed, temperature, condition, steps, eta, guidance_scale, trajectory=False)

    def denoising_trajectory(self, seed, temperature=1.0, condition=None, steps=DEFAULT_DIFFUSION_STEPS, eta=0.0,
                             guidance_scale=1.0):
        """`[S + 1, B, *event]`: x_T, then each step's x in the data's range (not
        rounded to levels), ending with the samples `sample` rounds; one `steps` for all
        rows."""
        return self._sampled(seed, temperature, condition, steps, eta, guidance_scale, trajectory=True)

    def _sampled(self, seed, temperature, condition, steps, eta, guidance_scale, trajectory):
        seed = tf.cast(seed, tf.int64)
        rows = tf.shape(seed)
        temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), rows)
        steps = tf.broadcast_to(tf.cast(steps, tf.int32), rows)
        eta = tf.broadcast_to(tf.cast(eta, tf.float32), rows)
        guidance_scale = tf.broadcast_to(tf.cast(guidance_scale, tf.float32), rows)
        checks = [
            tf.debugging.assert_greater_equal(steps, 1, message="steps: must be >= 1"),
            tf.debugging.assert_less_equal(
                steps, self.timesteps,
                message=f"steps: at most {self.timesteps} (the model's timesteps T, the cap) can be asked for"),
            tf.debugging.assert_greater_equal(eta, 0.0, message="eta: must be in [0, 1]"),
            tf.debugging.assert_less_equal(eta, 1.0, message="eta: must be in [0, 1]"),
            tf.debugging.assert_all_finite(guidance_scale, "guidance_scale: must be finite"),
            tf.debugging.assert_all_finite(temperature, "temperature: must be finite"),
        ]
        if condition is not None:
            condition = self._check_condition(condition)
        with tf.control_dependencies(checks):
            steps = tf.identity(steps)
        if trajectory:
            states = self._graph("_ddim_trajectory")(seed, temperature, condition, steps, eta, guidance_scale)
            return from_symmetric(states, self.data_spec, rounded=False)
        return from_symmetric(self._graph("_ddim")(seed, temperature, condition, steps, eta, guidance_scale),
                              self.data_spec)

    def _graph(self, method):
        """The method itself in a graph; traced once when called eagerly, where a Python
        loop over hundreds of network passes would crawl."""
        if not tf.executing_eagerly():
            return getattr(self, method)
        if method not in self._traced:
            self._traced[method] = tf.function(getattr(self, method), autograph=False)
        return self._traced[method]

    def _denoiser_function(self, network):
        """`network` as one `tf.function` of fixed signature, so the sampler's and the
        bound's loops (two signatures of an export) call one function and the exported
        graph holds the network once."""
        if network.name not in self._denoisers:
            specs = [tf.TensorSpec([None, *self.data_spec.event_shape], tf.float32), tf.TensorSpec([None], tf.float32)]
            if self.data_spec.conditional:
                specs.append(tf.TensorSpec([None], tf.int32))
            self._denoisers[network.name] = tf.function(lambda *args: network(*args), input_signature=specs,
                                                        autograph=False)
        return self._denoisers[network.name]

    def _predict_noise(self, network, x, t, condition, guidance_scale):
        t = tf.cast(t, tf.float32)
        network = self._denoiser_function(network)
        if condition is None:
            return network(x, t)

        def guided():
            null = tf.fill(tf.shape(condition), self.data_spec.num_classes)
            both = network(tf.concat([x, x], 0), tf.concat([t, t], 0), tf.concat([condition, null], 0))
            conditional, unconditional = tf.split(both, 2, 0)
            w = self._expand(guidance_scale)
            return unconditional + w * (conditional - unconditional)

        # A scale of 1 for every row (the default) is the conditional prediction alone:
        # skip the unconditional pass, half of every step's cost.
        return tf.cond(tf.reduce_all(tf.equal(guidance_scale, 1.0)), lambda: network(x, t, condition), guided)

    def _expand(self, per_row):
        return tf.reshape(per_row, [-1] + [1] * len(self.data_spec.event_shape))

    def _ddim_trajectory(self, seed, temperature, condition, steps, eta, guidance_scale):
        return self._ddim(seed, temperature, condition, steps, eta, guidance_scale, trajectory=True)

    def _ddim(self, seed, temperature, condition, steps, eta, guidance_scale, trajectory=False):
        network = self._sampling_denoiser
        event_shape = self.data_spec.event_shape
        expand = self._expand
        x = per_row_normal(seed, event_shape) * expand(temperature)
        total = self.timesteps
        max_steps = tf.reduce_max(steps)

        def step(k, x, *states):
            # The row's step index i counts down S-1 .. 0; rows with fewer steps wait.
            i = steps - 1 - k
            active = i >= 0
            i = tf.maximum(i, 0)
            t = (i * total) // steps
            s = ((i - 1) * total) // steps  # -1 after the last step: abar = 1
            alpha_bar = tf.gather(self._alpha_bar, t)
            alpha_bar_prev = tf.where(i > 0, tf.gather(self._alpha_bar, tf.maximum(s, 0)), 1.0)
            eps = self._predict_noise(network, x, t, condition, guidance_scale)
            x0 = (x - expand(tf.sqrt(1.0 - alpha_bar)) * eps) / expand(tf.sqrt(alpha_bar))
            if self._x0_range is not None:
                x0 = tf.clip_by_value(x0, *self._x0_range)
            sigma = eta * tf.sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * (1.0 - alpha_bar / alpha_bar_prev))
            direction = tf.sqrt(tf.maximum(1.0 - alpha_bar_prev - sigma ** 2, 0.0))
            z = per_row_normal(seed, event_shape, salt=tf.cast(i, tf.int64) + 1) * expand(temperature)
            x_prev = expand(tf.sqrt(alpha_bar_prev)) * x0 + expand(direction) * eps + expand(sigma) * z
            x = tf.where(expand(active), x_prev, x)
            return (k + 1, x, *(state.write(k + 1, x) for state in states))

        # The trajectory (a TensorArray of every step's x) is carried only when asked for.
        states = (tf.TensorArray(tf.float32, size=max_steps + 1).write(0, x),) if trajectory else ()
        _, x, *states = tf.while_loop(
            lambda k, *_: k < max_steps, step, (tf.constant(0), x, *states),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, *event_shape]),
                              *(tf.TensorShape(None) for _ in states)))
        return states[0].stack() if trajectory else x

    def log_prob(self, x, condition=None):
        return self._checked_bound(x, condition, stride=1)

    def classify_log_prob(self, x, condition):
        """log p(x | y) for the export's classify: the bound's stratified estimate with
        `classify_terms` denoising terms (module docstring); the bound at K >= T - 1."""
        return self._checked_bound(x, condition, stride=self._classify_stride)

    @property
    def classify_estimate(self):
        """What `classify_log_prob` computes (recorded in tfgen.json); None when it is the
        bound itself."""
        stride = self._classify_stride
        if stride == 1:
            return None
        first, terms, weight = _strided_terms(self.timesteps, stride)
        return {"of": "log_prob (the variational bound)",
                "method": f"stratified: the prior and decoder terms exact, {terms} of the {self.timesteps - 1} "
                          f"denoising KL terms (t = {first + 1}, {first + 1 + stride}, ... of 1 .. "
                          f"{self.timesteps}), each weighted {weight:.4g}, the same noise for every class",
                "terms": terms, "network_passes": terms + 1}

    def _checked_bound(self, x, condition, stride):
        x = self._check_x(x)
        if condition is not None:
            condition = self._check_condition(condition)
        return self._bound_function()(to_symmetric(x, self.data_spec), x, tf.constant(stride, tf.int32),
                                      *([] if condition is None else [condition]))

    def _bound_function(self):
        """`_bound` as one `tf.function` of fixed signature, the stride an argument, so
        log_prob and classify (two signatures of an export) call one function."""
        if "_bound" not in self._traced:
            event = tf.TensorSpec([None, *self.data_spec.event_shape], tf.float32)
            specs = [event, event, tf.TensorSpec([], tf.int32)]
            if self.data_spec.conditional:
                specs.append(tf.TensorSpec([None], tf.int32))

            def variational_bound(x0, x, stride, *condition):
                # No rows, no network pass: with oneDNN's graph rewrites on (TensorFlow's
                # default on CPUs with AVX-512) a 0-row pass fails in the group norm
                # ("Input to reshape is a tensor with 4 values, but the requested shape
                # has 0").
                return tf.cond(tf.shape(x0)[0] > 0,
                               lambda: self._bound(x0, x, condition[0] if condition else None, stride),
                               lambda: tf.zeros([0]))

            self._traced["_bound"] = tf.function(variational_bound, input_signature=specs, autograph=False)
        return self._traced["_bound"]

    def _bound(self, x0, x, condition, stride):
        """The variational bound in nats per row (module docstring): every denoising term
        at stride 1, else the stratified estimate of `_strided_terms`."""
        network = self._denoiser_function(self._sampling_denoiser)
        event_shape = self.data_spec.event_shape
        event_axes = list(range(1, len(event_shape) + 1))
        rows = tf.shape(x0)[0]
        total = self.timesteps

        def noise(t):
            return tf.random.stateless_normal(event_shape, seed=tf.stack([tf.constant(BOUND_SEED, tf.int64),
                                                                           tf.cast(t, tf.int64)]))

        def posterior_means(ts, noises):
            """The model's and the true mean of q(x_{t-1} | x_t, x_0) for every row at each
            t of `ts`, from one network pass over len(ts) x rows rows (t-major), and those
            rows' t. Every row at one t sees the same noise, `noises[i]` at `ts[i]`."""
            repeats = tf.size(ts)
            t_rows = tf.reshape(tf.broadcast_to(ts[:, None], [repeats, rows]), [-1])
            x0_rows = tf.tile(x0, tf.concat([[repeats], tf.ones([len(event_shape)], tf.int32)], 0))
            noise_rows = tf.reshape(tf.broadcast_to(noises[:, None], tf.concat([[repeats, rows], event_shape], 0)),
                                    tf.shape(x0_rows))
            x_t = self._noised(x0_rows, t_rows, noise_rows)
            eps = network(x_t, tf.cast(t_rows, tf.float32), *([] if condition is None else
                                                              [tf.tile(condition, [repeats])]))
            alpha_bar = self._gather(self._alpha_bar, t_rows)
            x0_hat = (x_t - tf.sqrt(1.0 - alpha_bar) * eps) / tf.sqrt(alpha_bar)
            to_x0, to_xt = self._gather(self._posterior_x0, t_rows), self._gather(self._posterior_xt, t_rows)
            return to_x0 * x0_hat + to_xt * x_t, to_x0 * x0_rows + to_xt * x_t, t_rows

        # Prior term: KL(N(sqrt(abar_T) x0, 1 - abar_T) || N(0, 1)) per dimension.
        variance_T = 1.0 - self._alpha_bar[-1]
        prior = 0.5 * tf.reduce_sum(variance_T + self._alpha_bar[-1] * x0 ** 2 - 1.0 - tf.math.log(variance_T),
                                    event_axes)

        # Decoder term (t = 1, 0-based 0): log p(x_0 | x_1) = N(mu, beta_1), on the levels
        # for discrete data.
        decoder_mean, _, _ = posterior_means(tf.zeros([1], tf.int32), noise(0)[None])
        decoder_scale = tf.sqrt(self._betas[0])
        spec = self.data_spec
        if spec.is_discrete:
            half = (spec.levels - 1) / 2.0
            decoder = distributions.discretized_normal((decoder_mean + 1.0) * half, decoder_scale * half,
                                                       spec.levels, len(event_shape)).log_prob(x)
        else:
            decoder = tf.reduce_sum(-0.5 * ((x0 - decoder_mean) / decoder_scale) ** 2 - tf.math.log(decoder_scale)
                                    - 0.5 * np.log(2.0 * np.pi), event_axes)

        # The denoising KLs (t >= 2), where both Gaussians have variance beta~_t: a loop
        # over chunks of timesteps, each chunk one network pass of about
        # `bound_rows_per_pass` rows, so a few rows cost far fewer than T - 1 small passes,
        # memory does not grow with T, and the network is in the graph once.
        first, _, kl_weight = _strided_terms(total, stride)
        kl_timesteps = tf.range(first, total, stride)
        count = tf.size(kl_timesteps)
        chunk = tf.clip_by_value(self.bound_rows_per_pass // tf.maximum(rows, 1), 1, tf.maximum(count, 1))

        def kl_chunk(start, kl_sum):
            ts = tf.slice(kl_timesteps, [start], [tf.minimum(chunk, count - start)])
            model_mean, true_mean, t_rows = posterior_means(ts, tf.map_fn(noise, ts, fn_output_signature=tf.float32))
            kl = tf.reduce_sum((true_mean - model_mean) ** 2, event_axes) / (
                2.0 * tf.maximum(tf.gather(self._posterior_variance, t_rows), 1e-20))
            return start + chunk, kl_sum + tf.reduce_sum(tf.reshape(kl, [tf.size(ts), rows]), 0)

        _, kl_sum = tf.while_loop(lambda start, _: start < count, kl_chunk, (tf.constant(0), tf.zeros([rows])),
                                  shape_invariants=(tf.TensorShape([]), tf.TensorShape([None])))
        return decoder - kl_weight * kl_sum - prior

    # === Training ===
    def simple_loss(self, x, condition, seed, training=True):
        """E ||eps - eps(x_t, t, y)||^2 per dimension, t uniform, labels dropped to the
        null class with probability label_dropout; draws keyed by the stateless `seed`
        (two int64s)."""
        x0 = to_symmetric(x, self.data_spec)
        rows = tf.shape(x0)[0]
        seeds = tf.random.experimental.stateless_split(seed, 3)
        t = tf.random.stateless_uniform([rows], seeds[0], 0, self.timesteps, tf.int32)
        noise = tf.random.stateless_normal(tf.shape(x0), seeds[1])
        if condition is not None and self.label_dropout:
            dropped = tf.random.stateless_uniform([rows], seeds[2]) < self.label_dropout
            condition = tf.where(dropped, self.data_spec.num_classes, tf.cast(condition, tf.int32))
        predicted = self.denoiser(self._noised(x0, t, noise), tf.cast(t, tf.float32), condition, training=training)
        return tf.reduce_mean((noise - predicted) ** 2)

    def train_step(self, data):
        x, condition = self._split(data)
        optimizer = self.optimizers[self.optimizer_names[0]]
        seed = self.training_noise_seed(0)
        with tf.GradientTape() as tape:
            loss = self.simple_loss(x, condition, seed)
        self.minimize(tape, loss)
        if self.ema_denoiser is not None:
            ema.update(self.ema_denoiser, self.denoiser, self.ema_decay, optimizer.iterations)
        self.tracker.update_state(loss)
        return {"loss": self.tracker.result()}

    def test_step(self, data):
        x, condition = self._split(data)
        seed = self.training_noise_seed(-1)
        self.tracker.update_state(self.simple_loss(x, condition, seed, training=False))
        return {"loss": self.tracker.result()}

    def evaluate_held_out(self, split, batch_size=256, draws=1, seed=0):
        """The simple loss (mean over the split) and bits/dim of the variational bound
        with its standard error over examples (deterministic: `draws` does not apply)."""
        figures = super().evaluate_held_out(split, batch_size, draws, seed)
        bound = evaluate_bits_per_dim(self, split, self.data_spec, batch_size=batch_size, seed=seed,
                                      log_prob_fn=self.log_prob)
        figures.update(bits_per_dim=bound["bits_per_dim"], bits_per_dim_stderr=bound["bits_per_dim_stderr"])
        return figures

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update(attribute_config(self, self.CONFIG_KEYS))
        return config


def _strided_terms(timesteps, stride):
    """The denoising KLs (0-based t 1 .. T-1) of the bound at `stride` (a Python or
    tensor int): `(first t, how many, weight of each)`, the midpoints of strata of `stride`
    terms, weighted to stand for all T - 1; stride 1 is every term, weighted 1."""
    first = (stride + 1) // 2
    terms = (timesteps - 1 - first) // stride + 1
    if isinstance(terms, int):
        return first, terms, (timesteps - 1) / terms
    return first, terms, tf.cast(timesteps - 1, tf.float32) / tf.cast(terms, tf.float32)
