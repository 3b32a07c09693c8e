"""The variational autoencoder (Kingma & Welling 2014) on `tfp.distributions`, with the
variants people use, all one class configured by name:

- decoder likelihoods p(x | z): `bernoulli` (binary data), `gaussian` with a learned
  per-dimension variance (continuous data), and on the dataset's discrete levels
  `categorical` and `discretized_logistic_mixture` (`tfgen.distributions`), whose
  bits/dim compare directly with flows and PixelCNN;
- priors p(z) (`priors.PRIORS`): standard normal, VampPrior, a MAF or RealNVP flow;
- posteriors q(z | x) (`posteriors.POSTERIORS`): a diagonal Gaussian, optionally pushed
  through IAF, planar, radial, Householder or Sylvester flow steps;
- objectives: the ELBO with a weight `beta` on its KL term, warmed up linearly over
  `kl_warmup_steps` (beta-VAE; Bowman et al. 2016), or the IWAE bound over
  `training_samples` draws (Burda et al. 2016); the KL term is analytic when the prior
  is standard normal and the posterior Gaussian, Monte-Carlo otherwise;
- a class condition (conditional VAE): a learned class embedding fed to the encoder and
  the decoder.

`log_prob` is the importance-weighted estimate over K = `num_importance_samples`
posterior draws,

    log p(x) >= log (1/K) sum_k p(x, z_k) / q(z_k | x),    z_k ~ q(z | x),

with the reparameterization noise of the K draws fixed (drawn from a constant seed, the
same for every row), so a row's value never depends on its batch or its call; it is
non-decreasing in K in expectation, and `importance_weighted_bounds` also gives the ELBO
from the same draws.
"""

import math

from tfgen import distributions
from tfgen.backend import keras, tf, tfd
from tfgen.contract import LogProbKind
from tfgen.errors import UserError
from tfgen.metrics.bits import bits_per_dim, evaluate_bits_per_dim
from tfgen.metrics.means import FigureMeans
from tfgen.models.base import GenerativeModel, check_log_prob_samples, register
from tfgen.models.vae import networks, posteriors, priors
from tfgen.random import per_row_normal, per_row_uniform

#: Posterior draws per pass of `log_prob` (bounds its memory at any K).
DRAWS_PER_PASS = 32
OBJECTIVES = ("elbo", "iwae")
LIKELIHOODS = {
    "bernoulli": "binary data (levels 2)",
    "gaussian": "continuous data, learned per-dimension variance",
    "categorical": "discrete data: a softmax over the levels per dimension",
    "discretized_logistic_mixture": "discrete data: PixelCNN++'s discretized mixture of logistics",
}


def _choice(kind, name, valid):
    if name not in valid:
        raise UserError(f"unknown {kind} {name!r}; valid: {sorted(valid)}")
    return name


def _divisor_at_most(n, cap):
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


@register
class VAE(GenerativeModel):
    """A variational autoencoder; see the module docstring for the variants.

    Args:
      data_spec: the `DataSpec`.
      latent_dim: L, the width of z.
      network: "mlp" or "conv" (images with sides divisible by 4).
      hidden_units: widths of the encoder's dense layers (the decoder uses them
        reversed); an empty list with network "mlp" gives a linear encoder and decoder.
      conv_filters: the two convolutions' filters (network "conv").
      activation: Keras activation of the hidden layers.
      likelihood: a key of LIKELIHOODS; default categorical for discrete data,
        gaussian for continuous data.
      num_mixture_components: components of the discretized logistic mixture.
      prior: a key of `priors.PRIORS`.
      num_pseudo_inputs: pseudo-inputs of the VampPrior.
      prior_flow_steps, prior_hidden_units: size of a flow prior.
      posterior: a key of `posteriors.POSTERIORS`.
      posterior_flow_steps, posterior_hidden_units: size of a posterior flow.
      objective: "elbo" or "iwae".
      training_samples: posterior draws per example of the training objective.
      beta: weight of the KL term (1: the ELBO).
      kl_warmup_steps: steps over which the KL weight rises linearly from 0 to `beta`
        (0: no warm-up).
      num_importance_samples: K of `log_prob` (fixed at export, recorded in its metadata).
      condition_dim: width of the class embedding of a conditional VAE.
      **kwargs: `keras.Model` arguments (`name`).
    """

    family = "vae"
    log_prob_kind = LogProbKind.IMPORTANCE_WEIGHTED_BOUND
    freezable_parts = ("encoder", "decoder", "prior")
    has_latent = True
    stochastic_encoder = True
    #: The config key `tfgen export --log-prob-samples` overrides.
    log_prob_samples_key = "num_importance_samples"
    #: Seed of `log_prob`'s fixed reparameterization noise (shared by every row).
    LOG_PROB_SEED = 20140
    CONFIG_KEYS = ("latent_dim", "network", "hidden_units", "conv_filters", "activation", "likelihood",
                   "num_mixture_components", "num_pseudo_inputs", "prior_flow_steps",
                   "prior_hidden_units", "posterior_flow_steps", "posterior_hidden_units",
                   "objective", "training_samples", "beta", "kl_warmup_steps", "num_importance_samples",
                   "condition_dim")

    def __init__(self, data_spec, latent_dim=16, network="mlp", hidden_units=(256,), conv_filters=(32, 64),
                 activation="relu", likelihood=None, num_mixture_components=5, prior="standard_normal",
                 num_pseudo_inputs=50, prior_flow_steps=2, prior_hidden_units=64, posterior="gaussian",
                 posterior_flow_steps=2, posterior_hidden_units=64, objective="elbo", training_samples=1,
                 beta=1.0, kl_warmup_steps=0, num_importance_samples=256, condition_dim=16, **kwargs):
        super().__init__(data_spec, **kwargs)
        spec = self.data_spec
        self.latent_dim = int(latent_dim)
        networks.check_network(network, spec.event_shape)
        self.network = network
        self.hidden_units = [int(u) for u in hidden_units]
        self.conv_filters = [int(f) for f in conv_filters]
        self.activation = activation
        if likelihood is None:
            likelihood = "categorical" if spec.is_discrete else "gaussian"
        self.likelihood = _choice("likelihood", likelihood, LIKELIHOODS)
        self.num_mixture_components = int(num_mixture_components)
        # Stored as *_name: `posterior` is the contract method (q's mean and scale).
        self.prior_name = _choice("prior", prior, priors.PRIORS)
        self.num_pseudo_inputs = int(num_pseudo_inputs)
        self.prior_flow_steps = int(prior_flow_steps)
        self.prior_hidden_units = int(prior_hidden_units)
        self.posterior_name = _choice("posterior", posterior, posteriors.POSTERIORS)
        self.posterior_flow_steps = int(posterior_flow_steps)
        self.posterior_hidden_units = int(posterior_hidden_units)
        self.objective = _choice("objective", objective, OBJECTIVES)
        self.training_samples = int(training_samples)
        self.beta = float(beta)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.num_importance_samples = check_log_prob_samples(num_importance_samples, "num_importance_samples")
        self.condition_dim = int(condition_dim)
        self._check_arguments()

        # === Layers ===
        if spec.conditional:
            self.condition_embedding = keras.layers.Embedding(spec.num_classes, self.condition_dim,
                                                              name="condition_embedding")
        self.encoder = networks.Encoder(self.network, self.hidden_units, self.conv_filters, activation, name="encoder")
        # Zero-initialized: every posterior starts as N(0, I), so no first step sees a huge KL.
        self.posterior_head = keras.layers.Dense(2 * self.latent_dim, kernel_initializer="zeros",
                                                 name="posterior_head")
        self.posterior_flow = posteriors.posterior_flow(self.posterior_name, self.latent_dim, self.posterior_flow_steps,
                                                        self.posterior_hidden_units)
        params_per_dim = {"bernoulli": 1, "gaussian": 1}.get(self.likelihood) or distributions.parameter_count(
            self.likelihood, spec.levels, self.num_mixture_components)
        self.decoder = networks.Decoder(self.network, spec.event_shape, params_per_dim, self.hidden_units[::-1],
                                        self.conv_filters, activation, name="decoder")
        if self.likelihood == "gaussian":
            self.raw_decoder_scale = self.add_weight(name="raw_decoder_scale", shape=spec.event_shape,
                                                     initializer="zeros")
        self.prior_distribution = self._build_prior()
        self.figures = FigureMeans(self.reported_losses + ("bits_per_dim",))

    def _check_arguments(self):
        spec = self.data_spec
        if self.likelihood == "bernoulli" and spec.levels != 2:
            raise UserError(f"likelihood 'bernoulli' needs binary data (levels 2), the data has levels {spec.levels}; "
                            "use 'categorical' or 'discretized_logistic_mixture' for discrete data")
        if self.likelihood == "gaussian" and spec.is_discrete:
            raise UserError(f"likelihood 'gaussian' is for continuous data; this data has {spec.levels} levels: "
                            "use 'categorical' or 'discretized_logistic_mixture', which bits/dim compare")
        if self.likelihood in distributions.LIKELIHOODS and not spec.is_discrete:
            raise UserError(f"likelihood {self.likelihood!r} is on discrete levels; this data is continuous: "
                            "use 'gaussian'")
        positive = {"latent_dim": self.latent_dim, "training_samples": self.training_samples,
                    "num_mixture_components": self.num_mixture_components,
                    "num_pseudo_inputs": self.num_pseudo_inputs, "prior_flow_steps": self.prior_flow_steps,
                    "posterior_flow_steps": self.posterior_flow_steps}
        for key, value in positive.items():
            if value < 1:
                raise UserError(f"{key} must be >= 1, got {value}")
        if self.beta < 0 or self.kl_warmup_steps < 0:
            raise UserError(f"beta and kl_warmup_steps must be >= 0, got {self.beta}, {self.kl_warmup_steps}")
        if self.prior_name == "realnvp" and self.latent_dim < 2:
            raise UserError("prior 'realnvp' couples halves of z: needs latent_dim >= 2")

    def _build_prior(self):
        if self.prior_name == "standard_normal":
            return priors.StandardNormalPrior(self.latent_dim, name="prior")
        if self.prior_name == "vamp":
            return priors.VampPrior(self.latent_dim, self.num_pseudo_inputs, self.data_spec.event_shape,
                                    self._gaussian_posterior, self.data_spec.num_classes, name="prior")
        return priors.FlowPrior({"maf": "MAF", "realnvp": "RealNVP"}[self.prior_name], self.latent_dim,
                                self.prior_flow_steps, self.prior_hidden_units, name="prior")

    @property
    def latent_shape(self):
        return (self.latent_dim,)

    @property
    def log_prob_samples(self):
        return self.num_importance_samples

    def part_variables(self, name):
        """encoder: q(z|x)'s networks (with any posterior flow); decoder: p(x|z)'s (with
        the gaussian scale); prior: p(z)'s (none for the standard normal). The class
        embedding feeds both and freezes with neither."""
        layers = {"encoder": [self.encoder, self.posterior_head, *self.posterior_flow],
                  "decoder": [self.decoder], "prior": [self.prior_distribution]}[name]
        variables = [v for layer in layers for v in layer.trainable_variables]
        if name == "decoder" and self.likelihood == "gaussian":
            variables.append(self.raw_decoder_scale)
        return variables

    @property
    def reported_losses(self):
        return ("loss", "reconstruction", "kl")

    @property
    def metrics(self):
        return [self.figures]

    # === Pieces ===
    def _class_features(self, condition):
        if not self.data_spec.conditional:
            return None
        return self.condition_embedding(self._check_condition(condition))

    def _network_input(self, x):
        """Checked raw data -> the encoder's input: discrete levels scaled to [-1, 1]."""
        if self.data_spec.is_discrete:
            return x * (2.0 / (self.data_spec.levels - 1)) - 1.0
        return x

    def _gaussian_posterior(self, network_input, condition):
        """(features h, mean, scale) of q_0(z | x) from encoder inputs."""
        h = self.encoder(network_input, self._class_features(condition))
        mean, raw_scale = tf.split(self.posterior_head(h), 2, axis=-1)
        return h, mean, distributions.bounded_scale(raw_scale)

    def _flow(self, z, h):
        """z_0 -> z_K through the posterior flow, with sum_k log |det|."""
        log_det = tf.zeros(tf.shape(z)[:1])
        for step in self.posterior_flow:
            z, step_log_det = step(z, h)
            log_det += step_log_det
        return z, log_det

    def _decoder_distribution(self, z, condition, params=None):
        """p(x | z), from the decoder's outputs `params` when already computed."""
        if params is None:
            params = self.decoder(z, self._class_features(condition))
        event_ndims = len(self.data_spec.event_shape)
        if self.likelihood == "bernoulli":
            return tfd.Independent(tfd.Bernoulli(logits=params[..., 0], dtype=tf.float32), event_ndims)
        if self.likelihood == "gaussian":
            scale = distributions.bounded_scale(self.raw_decoder_scale)
            return tfd.Independent(tfd.Normal(params[..., 0], scale), event_ndims)
        return distributions.on_levels(self.likelihood, params, self.data_spec.levels, event_ndims,
                                       self.num_mixture_components)

    def _log_likelihood(self, z, condition, x):
        """log p(x | z) `[B]`."""
        if self.likelihood in distributions.LIKELIHOODS:
            params = self.decoder(z, self._class_features(condition))
            return distributions.log_prob_on_levels(self.likelihood, params, x, self.data_spec.levels,
                                                    len(self.data_spec.event_shape), self.num_mixture_components)
        return self._decoder_distribution(z, condition).log_prob(x)

    def _log_weight_terms(self, x, condition, noise, check=True, posterior=None):
        """Per-draw terms of the bound, each `[K, B]`: log p(x | z), log p(z), log q(z | x)
        at z = flow(mean + scale * noise), `noise` `[K, B or 1, L]` with a static K.
        `check=False` skips the input assertions (training batches, validated when the
        dataset was loaded: `tfgen.data.datasets`; `log_prob`'s later passes). `posterior`:
        `(h, mean, scale)` of x already computed (the encoder runs once per row, not per
        pass over the draws)."""
        x = self._check_x(x) if check else tf.convert_to_tensor(x, tf.float32)
        if posterior is None:
            posterior = self._gaussian_posterior(self._network_input(x), condition)
        h, mean, scale = posterior
        draws, batch = noise.shape[0], tf.shape(x)[0]
        z0 = tf.reshape(mean + scale * noise, [-1, self.latent_dim])  # [K * B, L]

        def tiled(t):  # [B, ...] -> [K * B, ...], draw-major like z0
            return t if t is None or draws == 1 else tf.tile(t, [draws] + [1] * (len(t.shape) - 1))

        z, log_det = self._flow(z0, tiled(h))
        log_q = priors.normal_log_density(z0, tiled(mean), tiled(scale)) - log_det
        log_p = self.prior_distribution.log_prob(z)
        log_likelihood = self._log_likelihood(z, tiled(condition), tiled(x))

        def per_draw(t):
            return tf.reshape(t, [draws, batch])

        return per_draw(log_likelihood), per_draw(log_p), per_draw(log_q), (mean, scale)

    def _kl_weight(self):
        if not self.kl_warmup_steps:
            return tf.constant(self.beta)
        optimizer = getattr(self, "optimizer", None)
        step = tf.cast(optimizer.iterations, tf.float32) if optimizer is not None else 0.0
        return self.beta * tf.minimum(1.0, (step + 1.0) / self.kl_warmup_steps)

    def _objective(self, x, condition, seed=None):
        """{objective, bound, reconstruction, kl}, each `[B]` nats: what training
        maximizes (beta-weighted), the unweighted bound (ELBO or IWAE), and its parts.
        The posterior draws are keyed by `seed` (int64 `[2]`; `train_step` and
        `test_step` pass `training_noise_seed`), or from the global random state."""
        shape = [self.training_samples, tf.shape(x)[0], self.latent_dim]
        noise = tf.random.normal(shape) if seed is None else tf.random.stateless_normal(shape, seed)
        log_likelihood, log_p, log_q, (mean, scale) = self._log_weight_terms(x, condition, noise, check=False)
        weight = self._kl_weight()
        reconstruction = tf.reduce_mean(log_likelihood, 0)
        if self.objective == "iwae":
            log_k = math.log(self.training_samples)
            kl = tf.reduce_mean(log_q - log_p, 0)
            objective = tf.reduce_logsumexp(log_likelihood - weight * (log_q - log_p), 0) - log_k
            bound = tf.reduce_logsumexp(log_likelihood + log_p - log_q, 0) - log_k
        else:
            if self.prior_name == "standard_normal" and self.posterior_name == "gaussian":
                kl = tf.reduce_sum(0.5 * (mean ** 2 + scale ** 2 - 1.0) - tf.math.log(scale), -1)
            else:
                kl = tf.reduce_mean(log_q - log_p, 0)
            objective = reconstruction - weight * kl
            bound = reconstruction - kl
        return {"objective": objective, "bound": bound, "reconstruction": reconstruction, "kl": kl}

    def _report(self, terms):
        figures = {"loss": -tf.reduce_mean(terms["objective"]), "reconstruction": -tf.reduce_mean(terms["reconstruction"]),
                   "kl": tf.reduce_mean(terms["kl"]),
                   "bits_per_dim": tf.reduce_mean(bits_per_dim(terms["bound"], self.data_spec.num_dims))}
        self.figures.update_state(figures)
        return self.figures.results()

    # === Training ===
    def call(self, inputs, training=False):
        x, condition = self._split(inputs)
        return self._objective(x, condition)["objective"]

    def train_step(self, data):
        x, condition = self._split(data)
        with tf.GradientTape() as tape:
            terms = self._objective(x, condition, seed=self.training_noise_seed(0))
            loss = -tf.reduce_mean(terms["objective"])
        self.minimize(tape, loss)
        return self._report(terms)

    def test_step(self, data):
        x, condition = self._split(data)
        return self._report(self._objective(x, condition, seed=self.training_noise_seed(-1)))

    def evaluate_held_out(self, split, batch_size=256, draws=1, seed=0):
        """Held-out bits/dim of `log_prob` (the IWAE estimate at K =
        `num_importance_samples`, deterministic, so `draws` is unused) with its standard
        error, and of the ELBO from the same draws."""
        iwae = evaluate_bits_per_dim(self, split, self.data_spec, batch_size=batch_size, seed=seed,
                                     log_prob_fn=self.log_prob)
        elbo = evaluate_bits_per_dim(self, split, self.data_spec, batch_size=batch_size, seed=seed,
                                     log_prob_fn=lambda x, c: self.importance_weighted_bounds(x, c)["elbo"])
        iwae.update(num_importance_samples=self.num_importance_samples, elbo_bits_per_dim=elbo["bits_per_dim"],
                    elbo_bits_per_dim_stderr=elbo["bits_per_dim_stderr"])
        del iwae["num_noise_samples"]
        return iwae

    # === Contract ===
    def importance_weighted_bounds(self, x, condition=None, num_samples=None, seed=None):
        """{"log_prob": the IWAE estimate, "elbo": the ELBO}, `[B]` nats, over the same K
        fixed posterior draws (K = `num_samples` or `num_importance_samples`), computed
        `DRAWS_PER_PASS` draws at a time so memory stays bounded at any K. `seed` (an int)
        replaces the fixed draws' seed `LOG_PROB_SEED`, e.g. to average over draw sets."""
        k = self.num_importance_samples if num_samples is None else check_log_prob_samples(num_samples, "num_samples")
        per_pass = _divisor_at_most(k, DRAWS_PER_PASS)
        draw_seed = self.LOG_PROB_SEED if seed is None else int(seed)
        x = self._check_x(x)
        batch = tf.shape(x)[0]
        posterior = self._gaussian_posterior(self._network_input(x), condition)

        def one_pass(i, running_max, running_sum, elbo_sum):
            noise = tf.random.stateless_normal([per_pass, 1, self.latent_dim],
                                               seed=tf.stack([tf.constant(draw_seed), i]))
            log_likelihood, log_p, log_q, _ = self._log_weight_terms(x, condition, noise, check=False,
                                                                     posterior=posterior)
            log_weights = log_likelihood + log_p - log_q  # [per_pass, B]
            new_max = tf.maximum(running_max, tf.reduce_max(log_weights, 0))
            running_sum = (running_sum * tf.exp(running_max - new_max)
                           + tf.reduce_sum(tf.exp(log_weights - new_max), 0))
            return i + 1, new_max, running_sum, elbo_sum + tf.reduce_sum(log_weights, 0)

        start = (tf.constant(0), tf.fill([batch], -float("inf")), tf.zeros([batch]), tf.zeros([batch]))
        _, running_max, running_sum, elbo_sum = tf.while_loop(lambda i, *_: i < k // per_pass, one_pass, start)
        return {"log_prob": running_max + tf.math.log(running_sum) - math.log(k), "elbo": elbo_sum / k}

    def log_prob(self, x, condition=None):
        """The importance-weighted estimate of log p(x) (see the module docstring)."""
        return self.importance_weighted_bounds(x, condition)["log_prob"]

    def posterior(self, x, condition=None):
        """(mean, scale) `[B, L]` of the Gaussian q_0(z | x), before any posterior flow."""
        _, mean, scale = self._gaussian_posterior(self._network_input(self._check_x(x)), condition)
        return mean, scale

    def encode(self, x, condition=None, seed=None):
        """A draw z ~ q(z | x) keyed by the row's seed; without a seed, the posterior
        flow's image of the Gaussian's mean."""
        h, mean, scale = self._gaussian_posterior(self._network_input(self._check_x(x)), condition)
        z0 = mean if seed is None else mean + scale * per_row_normal(seed, [self.latent_dim], salt=2)
        return self._flow(z0, h)[0]

    def decode(self, z, condition=None):
        """z -> the most probable x under p(x | z) per dimension (the mean for gaussian)."""
        dist = self._decoder_distribution(tf.convert_to_tensor(z, tf.float32), condition)
        if self.likelihood == "gaussian":
            return dist.mean()
        if self.likelihood == "bernoulli":
            return tf.cast(dist.mean() > 0.5, tf.float32)
        return distributions.mode_on_levels(dist, self.data_spec.levels)

    def sample(self, seed, temperature=1.0, condition=None):
        """z from the prior keyed by the row's seed (noise scaled by `temperature`), then
        x ~ p(x | z) keyed by the same seed (Gaussian noise also scaled)."""
        z = self.prior_distribution.sample(seed, temperature)
        params = self.decoder(z, self._class_features(condition))
        event_shape = self.data_spec.event_shape
        if self.likelihood == "gaussian":
            dist = self._decoder_distribution(z, condition, params)
            temperature = tf.reshape(tf.convert_to_tensor(temperature, tf.float32), [-1] + [1] * len(event_shape))
            return dist.mean() + dist.stddev() * temperature * per_row_normal(seed, event_shape, salt=1)
        if self.likelihood == "bernoulli":
            probabilities = self._decoder_distribution(z, condition, params).mean()
            return tf.cast(per_row_uniform(seed, event_shape, salt=1) < probabilities, tf.float32)
        uniforms = per_row_uniform(seed, [*event_shape, distributions.UNIFORMS_PER_DRAW], salt=1)
        return distributions.draw_on_levels(self.likelihood, params, self.data_spec.levels, uniforms,
                                            num_components=self.num_mixture_components)

    def get_config(self):
        config = super().get_config()
        config.update({key: getattr(self, key) for key in self.CONFIG_KEYS})
        config.update(prior=self.prior_name, posterior=self.posterior_name)
        return config
