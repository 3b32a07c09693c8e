"""Maximum-likelihood training: the reusable piece of every family with a tractable
likelihood (normalizing flows, autoregressive models).

The objective is the mean negative log-likelihood of the training batch,

    loss = -(1/B) sum_b training_log_prob(x_b),

where `training_log_prob` is `log_prob` unless a subclass trains on a stochastic bound
(flows on discrete data: uniformly dequantized, `tfgen.models.dequantization`), whose
noise `train_step` and `test_step` key by `training_noise_seed`, so a resumed run draws
what the uninterrupted one would have drawn.
Both steps report `loss` (nats per example) and `bits_per_dim`
(`tfgen.metrics.bits.bits_per_dim`), and held-out evaluation is
`tfgen.metrics.bits.evaluate_bits_per_dim` over `draws` noise draws.
"""

import math

from tfgen.backend import keras, tf
from tfgen.contract import LogProbKind
from tfgen.metrics.bits import bits_per_dim, evaluate_bits_per_dim
from tfgen.models import dequantization
from tfgen.models.base import GenerativeModel, check_log_prob_samples


class LikelihoodModel(GenerativeModel):
    """A `GenerativeModel` trained by maximum likelihood with one optimizer.

    Subclasses implement `log_prob` and `sample` (and may override
    `training_log_prob`).

    Args:
      data_spec: a `DataSpec` or its dict form.
      **kwargs: passed to `keras.Model` (e.g. `name`).
    """

    def __init__(self, data_spec, **kwargs):
        super().__init__(data_spec, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.bits_per_dim_tracker = keras.metrics.Mean(name="bits_per_dim")

    def training_log_prob(self, x, condition=None, training=True, seed=None):
        """The per-example objective `fit` maximizes; defaults to `log_prob`.

        `seed`, an int64 `[2]` stateless seed, keys its noise where it has any; None
        draws from TensorFlow's global random state (held-out evaluation, which seeds it:
        `tfgen.metrics.bits.evaluate_bits_per_dim`)."""
        return self.log_prob(x, condition)

    def call(self, inputs, training=False):
        x, condition = self._split(inputs)
        if training:
            return self.training_log_prob(x, condition, training=True)
        return self.log_prob(x, condition)

    @property
    def metrics(self):
        return [self.loss_tracker, self.bits_per_dim_tracker]

    def _update_metrics(self, log_prob):
        self.loss_tracker.update_state(-log_prob)
        self.bits_per_dim_tracker.update_state(bits_per_dim(log_prob, self.data_spec.num_dims))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, condition = self._split(data)
        with tf.GradientTape() as tape:
            log_prob = self.training_log_prob(x, condition, training=True, seed=self.training_noise_seed(0))
            loss = -tf.reduce_mean(log_prob)
            if self.losses:
                loss += tf.add_n(self.losses)
        self.minimize(tape, loss)
        return self._update_metrics(log_prob)

    def test_step(self, data):
        x, condition = self._split(data)
        return self._update_metrics(self.training_log_prob(x, condition, training=False,
                                                           seed=self.training_noise_seed(-1)))

    def evaluate_held_out(self, split, batch_size=256, draws=1, seed=0):
        """Held-out bits/dim with its standard error and the mean log-likelihood,
        averaged over `draws` draws of `training_log_prob`'s noise
        (`tfgen.metrics.bits.evaluate_bits_per_dim`)."""
        return evaluate_bits_per_dim(self, split, self.data_spec, batch_size=batch_size,
                                     num_noise_samples=draws, seed=seed)


class DensityModel(LikelihoodModel):
    """A continuous density, used directly on continuous data and uniformly dequantized
    on discrete data (`tfgen.models.dequantization`): flows, probabilistic PCA.

    Subclasses implement `_unit_log_prob(u, condition)`, the density on the model's data
    space: the raw data for continuous data, the unit cube `(x + noise) / levels` for
    discrete data.

    Args:
      data_spec: a `DataSpec` (or dict).
      dequantization_samples: K, the fixed dequantization draws `log_prob` averages
        over for discrete data (K passes per row; ignored for continuous data).
      **kwargs: `keras.Model` arguments (`name`).
    """

    log_prob_samples_key = "dequantization_samples"
    #: Seed of the fixed dequantization draws of `log_prob` (shared by every row).
    DEQUANTIZATION_SEED = (20161, 1511)

    def __init__(self, data_spec, dequantization_samples=4, **kwargs):
        super().__init__(data_spec, **kwargs)
        self.dequantization_samples = check_log_prob_samples(dequantization_samples, "dequantization_samples")
        if self.data_spec.is_discrete:
            # log_prob's fixed draws: constants of the model, drawn once rather than per call.
            self._dequantization_noise = tf.random.stateless_uniform(
                [self.dequantization_samples, *self.data_spec.event_shape], seed=self.DEQUANTIZATION_SEED
            ).numpy()

    @property
    def log_prob_kind(self):
        """Exact on continuous data; on discrete data a dequantization lower bound."""
        return LogProbKind.DEQUANTIZED_LOWER_BOUND if self.data_spec.is_discrete else LogProbKind.EXACT

    @property
    def log_prob_samples(self):
        """K of `log_prob` (recorded in the export's metadata); None when exact."""
        return self.dequantization_samples if self.data_spec.is_discrete else None

    def _unit_log_prob(self, u, condition):
        """Log density of `u` in the model's data space (see the class docstring)."""
        raise NotImplementedError

    def _to_model_space(self, x, noise=None):
        """Raw data -> model data space; bin centres unless dequantization noise is given."""
        if not self.data_spec.is_discrete:
            return x
        if noise is None:
            return dequantization.bin_centres(x, self.data_spec.levels)
        return dequantization.dequantize(x, self.data_spec.levels, noise)

    def _to_raw(self, u):
        if not self.data_spec.is_discrete:
            return u
        return dequantization.quantize(u, self.data_spec.levels)

    def _raw_log_prob(self, u, condition):
        log_prob = self._unit_log_prob(u, condition)
        if self.data_spec.is_discrete:
            log_prob = dequantization.discrete_log_prob(log_prob, self.data_spec.num_dims, self.data_spec.levels)
        return log_prob

    def log_prob(self, x, condition=None):
        """log p(x) in nats: exact for continuous x; for discrete x, a deterministic
        importance-weighted dequantization estimate of the probability of x's bin,

            log P(x) ~= log (1/K) sum_k p_u((x + n_k) / L) - D log L,

        with K = `dequantization_samples` fixed draws n_k ~ U[0, 1)^D, the same for every
        row (so a row's value never depends on its batch or its call). In expectation
        over the draws it is a lower bound on log P(x) that tightens as K grows (Burda
        et al. 2016, arXiv:1509.00519; Ho et al. 2019, arXiv:1902.00275, sec. 3.1); at
        K = 1 its mean over a data set is the usual dequantized bits/dim.
        """
        x = self._check_x(x)
        if not self.data_spec.is_discrete:
            return self._raw_log_prob(x, condition)
        k = self.dequantization_samples
        noise = tf.constant(self._dequantization_noise)
        batch = tf.shape(x)[0]
        # [K, B, *event] -> [K * B, *event]: one pass of the model over every draw.
        u = dequantization.dequantize(x[tf.newaxis], self.data_spec.levels, noise[:, tf.newaxis])
        u = tf.reshape(u, tf.concat([[k * batch], tf.shape(x)[1:]], 0))
        condition = None if condition is None else tf.tile(tf.reshape(condition, [-1]), [k])
        log_probs = tf.reshape(self._raw_log_prob(u, condition), [k, batch])
        return tf.reduce_logsumexp(log_probs, axis=0) - math.log(k)

    def training_log_prob(self, x, condition=None, training=True, seed=None):
        """With uniform dequantization noise for discrete data (the standard bound)."""
        x = self._check_x(x)
        noise = None
        if self.data_spec.is_discrete:
            noise = (tf.random.uniform(tf.shape(x)) if seed is None
                     else tf.random.stateless_uniform(tf.shape(x), seed))
        return self._raw_log_prob(self._to_model_space(x, noise), condition)

    def get_config(self):
        config = super().get_config()
        config.update(dequantization_samples=self.dequantization_samples)
        return config
