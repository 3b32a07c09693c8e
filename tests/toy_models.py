"""Tiny real models of three kinds, for tests of the shared machinery.

None is registered in tfgen's registry: configs name them by import path
(`toy_models:ToyAdversarial`, with tests/ on `sys.path`, as tests/conftest.py puts it),
the way a user trains a model class of their own.

- `DiagonalAffineFlow`: a complete (if weak) normalizing flow, x = shift + exp(s) * z,
  trained by maximum likelihood through the real `FlowModel` machinery.
- `ToyAdversarial`: two optimizers and an adversarial step (a GAN in miniature), no
  likelihood.
- `ToyLatentGaussian`: a stochastic encoder and a bound as its objective (a linear
  Gaussian VAE), `log_prob` an importance-weighted bound.
"""

import math

from tfgen.backend import keras, tf, tfb
from tfgen.contract import LogProbKind
from tfgen.models.base import GenerativeModel
from tfgen.models.flows.base import FlowModel
from tfgen.random import per_row_normal


class DiagonalAffineFlow(FlowModel):
    """x = shift(condition) + exp(log_scale) * z, one learned shift and log-scale per
    dimension; a conditional flow adds a learned per-class shift.

    Args:
      data_spec: the `DataSpec`.
      init_log_scale: initial log-scale (a far-off start makes learning visible).
      init_shift_stddev: standard deviation of the initial shift (0: zeros).
      **kwargs: `FlowModel` arguments.
    """

    def __init__(self, data_spec, init_log_scale=0.0, init_shift_stddev=0.0, **kwargs):
        super().__init__(data_spec, **kwargs)
        self.init_log_scale = float(init_log_scale)
        self.init_shift_stddev = float(init_shift_stddev)
        shape = self.data_spec.event_shape
        shift_init = keras.initializers.RandomNormal(stddev=self.init_shift_stddev) if self.init_shift_stddev else "zeros"
        self.shift = self.add_weight(name="shift", shape=shape, initializer=shift_init)
        self.log_scale = self.add_weight(
            name="log_scale", shape=shape, initializer=keras.initializers.Constant(self.init_log_scale)
        )
        if self.data_spec.conditional:
            self.condition_shift = keras.layers.Dense(self.data_spec.num_dims, name="condition_shift")

    def _flow_bijector(self, condition_features):
        shift = self.shift
        if condition_features is not None:
            shift = shift + tf.reshape(self.condition_shift(condition_features), [-1, *self.data_spec.event_shape])
        return tfb.Chain([tfb.Shift(shift), tfb.Scale(log_scale=self.log_scale)])

    def get_config(self):
        config = super().get_config()
        config.update(init_log_scale=self.init_log_scale, init_shift_stddev=self.init_shift_stddev)
        return config


def _normal_log_density(value, mean, std):
    """log N(value; mean, diag std^2), summed over the last axis."""
    return tf.reduce_sum(-0.5 * ((value - mean) / std) ** 2 - tf.math.log(std * tf.ones_like(value))
                         - 0.5 * math.log(2 * math.pi), -1)


def _flat(x, num_dims):
    return tf.reshape(tf.convert_to_tensor(x, tf.float32), [-1, num_dims])


class ToyAdversarial(GenerativeModel):
    """Generator x = A z + b, discriminator a one-hidden-layer MLP, non-saturating losses
    (Goodfellow et al. 2014), one update of each optimizer per step.

    Args:
      data_spec: the `DataSpec` (continuous data).
      latent_dim: width of z.
      hidden_units: discriminator width.
    """

    family = "gan"
    log_prob_kind = LogProbKind.NONE
    optimizer_names = ("generator", "discriminator")
    freezable_parts = ("generator", "discriminator")

    def __init__(self, data_spec, latent_dim=2, hidden_units=8, **kwargs):
        super().__init__(data_spec, **kwargs)
        self.latent_dim = int(latent_dim)
        self.hidden_units = int(hidden_units)
        num_dims = self.data_spec.num_dims
        self.generator = keras.Sequential(
            [keras.Input([self.latent_dim]), keras.layers.Dense(num_dims)], name="generator")
        self.discriminator = keras.Sequential(
            [keras.Input([num_dims]), keras.layers.Dense(self.hidden_units, "relu"), keras.layers.Dense(1)],
            name="discriminator")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.reported_losses}

    @property
    def reported_losses(self):
        return ("generator_loss", "discriminator_loss")

    @property
    def metrics(self):
        return list(self.trackers.values())

    def variables_for_optimizer(self, name):
        return getattr(self, name).trainable_variables

    def call(self, inputs, training=False):
        x, _ = self._split(inputs)
        return self.discriminator(_flat(x, self.data_spec.num_dims))

    def sample(self, seed, temperature=1.0, condition=None):
        temperature = tf.reshape(tf.convert_to_tensor(temperature, tf.float32), [-1, 1])
        x = self.generator(per_row_normal(seed, [self.latent_dim]) * temperature)
        return tf.reshape(x, [-1, *self.data_spec.event_shape])

    def _adversarial_losses(self, x, z):
        real_logits = self.discriminator(x)
        fake_logits = self.discriminator(self.generator(z))
        discriminator_loss = tf.reduce_mean(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits))
        generator_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
        return generator_loss, discriminator_loss

    def _report(self, generator_loss, discriminator_loss):
        self.trackers["generator_loss"].update_state(generator_loss)
        self.trackers["discriminator_loss"].update_state(discriminator_loss)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        x, _ = self._split(data)
        x = _flat(x, self.data_spec.num_dims)
        z = tf.random.normal([tf.shape(x)[0], self.latent_dim])
        with tf.GradientTape() as tape:
            _, discriminator_loss = self._adversarial_losses(x, z)
        self.minimize(tape, discriminator_loss, "discriminator")
        with tf.GradientTape() as tape:
            generator_loss, discriminator_loss = self._adversarial_losses(x, z)
        self.minimize(tape, generator_loss, "generator")
        return self._report(generator_loss, discriminator_loss)

    def test_step(self, data):
        x, _ = self._split(data)
        x = _flat(x, self.data_spec.num_dims)
        return self._report(*self._adversarial_losses(x, tf.random.normal([tf.shape(x)[0], self.latent_dim])))

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, hidden_units=self.hidden_units)
        return config


class ToyLatentGaussian(GenerativeModel):
    """A linear Gaussian VAE trained on the evidence lower bound (Kingma & Welling 2014):

        p(z) = N(0, I),  p(x | z) = N(W z + b, sigma^2 I),  q(z | x) = N(mu(x), diag s(x)^2)

    with mu and log s affine in x. `log_prob` is the importance-weighted bound over K
    fixed standard-normal draws (Burda et al. 2016), the same for every row, so it is
    deterministic; `encode` draws z ~ q(z | x) keyed by the row's seed.

    Args:
      data_spec: the `DataSpec` (continuous data).
      latent_dim: width of z.
      num_importance_samples: K of `log_prob`.
    """

    family = "vae"
    log_prob_kind = LogProbKind.IMPORTANCE_WEIGHTED_BOUND
    has_latent = True
    stochastic_encoder = True
    DRAWS_SEED = (7, 11)

    def __init__(self, data_spec, latent_dim=1, num_importance_samples=4, **kwargs):
        super().__init__(data_spec, **kwargs)
        self.latent_dim = int(latent_dim)
        self.num_importance_samples = int(num_importance_samples)
        num_dims = self.data_spec.num_dims
        self.encoder = keras.Sequential(
            [keras.Input([num_dims]), keras.layers.Dense(2 * self.latent_dim)], name="encoder")
        self.decoder = keras.Sequential([keras.Input([self.latent_dim]), keras.layers.Dense(num_dims)], name="decoder")
        self.log_sigma = self.add_weight(name="log_sigma", shape=[], initializer="zeros")
        self._draws = tf.random.stateless_normal([self.num_importance_samples, self.latent_dim],
                                                 seed=self.DRAWS_SEED).numpy()
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    @property
    def latent_shape(self):
        return (self.latent_dim,)

    def call(self, inputs, training=False):
        x, _ = self._split(inputs)
        return self.log_prob(x)

    def posterior(self, x, condition=None):
        loc, log_scale = tf.split(self.encoder(_flat(x, self.data_spec.num_dims)), 2, axis=-1)
        return loc, tf.exp(log_scale)

    def _log_weights(self, x, eps):
        """log p(x, z) - log q(z | x) at z = mu(x) + s(x) * eps; eps `[..., B, latent]`."""
        loc, scale = self.posterior(x)
        z = loc + scale * eps
        mean = tf.reshape(self.decoder(tf.reshape(z, [-1, self.latent_dim])),
                          tf.concat([tf.shape(z)[:-1], [self.data_spec.num_dims]], 0))
        log_likelihood = _normal_log_density(x, mean, tf.exp(self.log_sigma))
        return log_likelihood + _normal_log_density(z, 0.0, 1.0) - _normal_log_density(z, loc, scale)

    def importance_weighted_bounds(self, x, condition=None):
        x = _flat(x, self.data_spec.num_dims)
        eps = tf.constant(self._draws)[:, tf.newaxis, :]  # [K, 1, latent]
        log_weights = self._log_weights(x, eps)  # [K, B]
        return {"log_prob": tf.reduce_logsumexp(log_weights, axis=0) - math.log(self.num_importance_samples),
                "elbo": tf.reduce_mean(log_weights, axis=0)}

    def log_prob(self, x, condition=None):
        return self.importance_weighted_bounds(x)["log_prob"]

    def elbo(self, x):
        """One-sample reparameterized ELBO per row (the training objective)."""
        eps = tf.random.normal([tf.shape(x)[0], self.latent_dim])
        return self._log_weights(x, eps)

    def train_step(self, data):
        x, _ = self._split(data)
        x = _flat(x, self.data_spec.num_dims)
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(self.elbo(x))
        self.minimize(tape, loss)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        x, _ = self._split(data)
        self.loss_tracker.update_state(-tf.reduce_mean(self.elbo(_flat(x, self.data_spec.num_dims))))
        return {"loss": self.loss_tracker.result()}

    def encode(self, x, condition=None, seed=None):
        loc, scale = self.posterior(x)
        if seed is None:
            return loc
        return loc + scale * per_row_normal(seed, [self.latent_dim])

    def decode(self, z, condition=None):
        return tf.reshape(self.decoder(tf.convert_to_tensor(z, tf.float32)), [-1, *self.data_spec.event_shape])

    def sample(self, seed, temperature=1.0, condition=None):
        temperature = tf.reshape(tf.convert_to_tensor(temperature, tf.float32), [-1, 1])
        z = per_row_normal(seed, [self.latent_dim]) * temperature
        noise = per_row_normal(seed, [self.data_spec.num_dims], salt=1) * temperature * tf.exp(self.log_sigma)
        return self.decode(z) + tf.reshape(noise, [-1, *self.data_spec.event_shape])

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, num_importance_samples=self.num_importance_samples)
        return config
