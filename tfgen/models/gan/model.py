"""Generative adversarial networks (Goodfellow et al. 2014, arXiv:1406.2661), one class
configured by name:

- networks (`networks.NETWORKS`): `dcgan` for images, `mlp` for vectors; a conditional
  model (data with `num_classes`) has a class-conditioned generator and a projection
  discriminator;
- losses (`tfgen.losses.LOSSES`): minimax, non_saturating, wasserstein, least_squares,
  hinge; optionally WGAN-GP's gradient penalty (`gradient_penalty_weight`) and R1
  (`r1_weight`) added to the discriminator's loss;
- training: `discriminator_steps` (k) discriminator updates per generator update on the
  same real batch with fresh noise, two optimizers ("generator", "discriminator"; two
  time-scale learning rates via `training.optimizers.<name>`), optional spectral
  normalization of the discriminator, an exponential moving average (EMA) of the
  generator's weights that sampling and exports use.

There is no likelihood (`log_prob_kind` NONE): the export has `sample`, `decode` (latent
-> data) and `describe`. `sample(seed)` decodes z = `per_row_normal(seed) * temperature`
with the EMA generator, so a seed's sample is the one `tfgen interpolate` decodes for
that seed. Discrete data are scaled to [-1, 1] for the networks and samples rounded back
to the levels.

Training noise (z, and the gradient penalty's interpolation weights) is stateless, keyed
by `noise_seed`, the replica and the generator optimizer's step counter: a run resumed
from a checkpoint draws exactly the noise the uninterrupted run would have drawn.
"""

from tfgen import losses
from tfgen.backend import keras, tf
from tfgen.contract import LogProbKind
from tfgen.errors import UserError
from tfgen.models import ema
from tfgen.models.base import NONFINITE_INPUT_MESSAGE, GenerativeModel, register
from tfgen.models.gan import networks
from tfgen.models.symmetric_range import from_symmetric, to_symmetric
from tfgen.random import per_row_normal
from tfgen.serialization import attribute_config


@register
class GAN(GenerativeModel):
    """A GAN; see the module docstring.

    Args:
      data_spec: the `DataSpec`.
      latent_dim: width of z.
      network: "dcgan" or "mlp"; default dcgan for images, mlp otherwise.
      generator_units, discriminator_units: "mlp": hidden dense widths.
      generator_filters: "dcgan": generator feature-map filters, widest first (the
        first map has side H / 2^len).
      discriminator_filters: "dcgan": filters of the discriminator's convolutions.
      generator_batch_norm: batch norm between the generator's hidden layers.
      leaky_relu_slope: the discriminator's LeakyReLU slope.
      loss: a key of `tfgen.losses.LOSSES`.
      gradient_penalty_weight: lambda of WGAN-GP's penalty (0: none).
      r1_weight: gamma of the R1 penalty gamma/2 * E||grad D(x)||^2 (0: none).
      discriminator_steps: k, discriminator updates per generator update.
      spectral_normalization: spectrally normalize the discriminator's layers.
      ema_decay: decay of the generator weights' EMA (0: sample from the trained
        generator itself). The decay used at update t is min(ema_decay, (1 + t) / (10 + t)),
        so early averages are not dominated by the initial weights.
      condition_dim: width of the generator's class embedding (conditional data).
      **kwargs: `GenerativeModel` arguments (`noise_seed`) and `keras.Model`'s (`name`).
    """

    family = "gan"
    log_prob_kind = LogProbKind.NONE
    has_latent = True
    has_encoder = False
    optimizer_names = ("generator", "discriminator")
    CONFIG_KEYS = ("latent_dim", "network", "generator_units", "discriminator_units", "generator_filters",
                   "discriminator_filters", "generator_batch_norm", "leaky_relu_slope",
                   "gradient_penalty_weight", "r1_weight", "discriminator_steps", "spectral_normalization",
                   "ema_decay", "condition_dim")

    def __init__(self, data_spec, latent_dim=64, network=None, generator_units=(256, 256),
                 discriminator_units=(256, 256), generator_filters=(128, 64), discriminator_filters=(64, 128),
                 generator_batch_norm=True, leaky_relu_slope=0.2, loss="non_saturating", gradient_penalty_weight=0.0,
                 r1_weight=0.0, discriminator_steps=1, spectral_normalization=False, ema_decay=0.999,
                 condition_dim=16, **kwargs):
        super().__init__(data_spec, **kwargs)
        spec = self.data_spec
        # === Hyperparameters ===
        self.latent_dim = int(latent_dim)
        self.network = network or ("dcgan" if spec.kind == "image" else "mlp")
        self.generator_units = [int(u) for u in generator_units]
        self.discriminator_units = [int(u) for u in discriminator_units]
        self.generator_filters = [int(f) for f in generator_filters]
        self.discriminator_filters = [int(f) for f in discriminator_filters]
        self.generator_batch_norm = bool(generator_batch_norm)
        self.leaky_relu_slope = float(leaky_relu_slope)
        # Not `self.loss`: Keras' compile() sets that attribute to its own loss argument.
        self.loss_name = loss
        self.generator_loss_fn, self.discriminator_loss_fn = losses.loss_pair(loss)
        self.gradient_penalty_weight = float(gradient_penalty_weight)
        self.r1_weight = float(r1_weight)
        self.discriminator_steps = int(discriminator_steps)
        if self.discriminator_steps < 1:
            raise UserError(f"discriminator_steps must be >= 1, got {discriminator_steps!r}")
        self.spectral_normalization = bool(spectral_normalization)
        self.ema_decay = ema.checked_decay(ema_decay)
        self.condition_dim = int(condition_dim)
        networks.check_network(self.network, spec.event_shape, len(self.generator_filters))
        if self.network == "dcgan":
            networks.check_network(self.network, spec.event_shape, len(self.discriminator_filters))

        # === Layers ===
        def generator(name):
            return networks.Generator(self.network, spec.event_shape, self.generator_units, self.generator_filters,
                                      self.generator_batch_norm, "tanh" if spec.is_discrete else "linear", name=name)

        self.generator = generator("generator")
        # The EMA of the generator's weights: a second network that only `_update_ema`
        # writes; checkpoints hold it with the model, exports sample from it.
        self.ema_generator = generator("ema_generator") if self.ema_decay else None
        self.class_embedding = (keras.layers.Embedding(spec.num_classes, self.condition_dim, name="class_embedding")
                                if spec.conditional else None)
        self.discriminator = networks.Discriminator(
            self.network, spec.event_shape, self.discriminator_units, self.discriminator_filters,
            self.leaky_relu_slope, self.spectral_normalization, spec.num_classes, name="discriminator")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.reported_losses}
        self._build_networks()

    def _build_networks(self):
        """Creates every weight (so a checkpoint restore or an export finds them) and
        starts the EMA at the generator's initial weights."""
        spec = self.data_spec
        condition = tf.zeros([1], tf.int32) if spec.conditional else None
        x = self._generate(tf.zeros([1, self.latent_dim]), condition, network=self.generator)
        self._discriminate(x, condition)
        if self.ema_generator is not None:
            self._generate(tf.zeros([1, self.latent_dim]), condition, network=self.ema_generator)
            ema.start(self.ema_generator, self.generator)

    @property
    def reported_losses(self):
        return ("generator_loss", "discriminator_loss")

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def latent_shape(self):
        return (self.latent_dim,)

    def compile(self, optimizer=None, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Keras `compile` with both optimizers, as a dict `optimizer={"generator": ...,
        "discriminator": ...}` or as `generator_optimizer=` / `discriminator_optimizer=`."""
        if optimizer is None:
            if generator_optimizer is None or discriminator_optimizer is None:
                raise UserError("GAN.compile needs both generator_optimizer and discriminator_optimizer "
                                "(or optimizer={'generator': ..., 'discriminator': ...})")
            optimizer = {"generator": generator_optimizer, "discriminator": discriminator_optimizer}
        elif generator_optimizer is not None or discriminator_optimizer is not None:
            raise UserError("GAN.compile: give optimizer={...} or generator_/discriminator_optimizer, not both")
        super().compile(optimizer=optimizer, **kwargs)

    #: `--freeze discriminator` fine-tunes the generator against a fixed critic (and the
    #: reverse); the class embedding belongs to the generator.
    freezable_parts = ("generator", "discriminator")

    def part_variables(self, name):
        return self.variables_for_optimizer(name)

    def variables_for_optimizer(self, name):
        if name == "generator":
            embedding = self.class_embedding.trainable_variables if self.class_embedding is not None else []
            return self.generator.trainable_variables + embedding
        return self.discriminator.trainable_variables

    # === Networks ===
    def _generate(self, z, condition, network=None, training=False):
        features = None if condition is None else self.class_embedding(condition)
        return (network or self.generator)(z, features, training=training)

    def _discriminate(self, u, condition, training=False):
        return self.discriminator(u, condition, training=training)

    @property
    def _sampling_generator(self):
        return self.ema_generator if self.ema_generator is not None else self.generator

    # === Contract ===
    def call(self, inputs, training=False):
        x, condition = self._split(inputs)
        return self._discriminate(to_symmetric(x, self.data_spec), condition, training=training)

    def decode(self, z, condition=None):
        z = tf.convert_to_tensor(z, tf.float32)
        z = tf.debugging.assert_all_finite(z, f"z {NONFINITE_INPUT_MESSAGE}")
        if condition is not None:
            condition = self._check_condition(condition)
        return from_symmetric(self._generate(z, condition, network=self._sampling_generator), self.data_spec)

    def sample(self, seed, temperature=1.0, condition=None):
        temperature = tf.reshape(tf.convert_to_tensor(temperature, tf.float32), [-1, 1])
        return self.decode(per_row_normal(seed, [self.latent_dim]) * temperature, condition)

    # === Training ===
    def _noise_seed(self, draw):
        """The stateless seed of training draw `draw` at this step on this replica (-1:
        the evaluation draw of `test_step`)."""
        return self.training_noise_seed(draw, draws_per_step=2 * (self.discriminator_steps + 1))

    def _latents(self, batch_size, draw):
        return tf.random.stateless_normal([batch_size, self.latent_dim], seed=self._noise_seed(draw))

    def _discriminator_loss(self, real, condition, z, draw):
        generated = self._generate(z, condition, training=True)
        # One discriminator pass over real and generated rows together (as keras-io's
        # DCGAN): half the layer calls of two passes; the critic has no batch norm, so
        # each row's output is what a pass of its own would give.
        both = self._discriminate(tf.concat([real, generated], 0),
                                  None if condition is None else tf.concat([condition, condition], 0), training=True)
        real_outputs, generated_outputs = tf.split(both, 2)
        loss = self.discriminator_loss_fn(real_outputs, generated_outputs)
        critic = lambda u, c=None: self._discriminate(u, c, training=True)  # noqa: E731
        if self.gradient_penalty_weight:
            loss += self.gradient_penalty_weight * losses.wasserstein_gradient_penalty(
                critic, real, generated, seed=self._noise_seed(draw + 1), condition=condition)
        if self.r1_weight:
            loss += 0.5 * self.r1_weight * losses.r1_penalty(critic, real, condition)
        return loss

    def _generator_loss(self, z, condition, training=True):
        return self.generator_loss_fn(self._discriminate(self._generate(z, condition, training=training), condition,
                                                         training=training))

    def train_step(self, data):
        x, condition = self._split(data)
        real = to_symmetric(x, self.data_spec)
        batch_size = tf.shape(real)[0]
        for k in range(self.discriminator_steps):
            z = self._latents(batch_size, 2 * k)
            with tf.GradientTape() as tape:
                discriminator_loss = self._discriminator_loss(real, condition, z, 2 * k)
            self.minimize(tape, discriminator_loss, "discriminator")
        z = self._latents(batch_size, 2 * self.discriminator_steps)
        with tf.GradientTape() as tape:
            generator_loss = self._generator_loss(z, condition)
        self.minimize(tape, generator_loss, "generator")
        self._update_ema()
        return self._report(generator_loss, discriminator_loss)

    def test_step(self, data):
        x, condition = self._split(data)
        real = to_symmetric(x, self.data_spec)
        # Keyed by the step and the batch's index in the evaluation, not the global RNG:
        # a resumed run reports the validation figures the uninterrupted one would.
        z = self._latents(tf.shape(real)[0], draw=-1)
        generated = self._generate(z, condition, network=self._sampling_generator)
        generated_outputs = self._discriminate(generated, condition)
        return self._report(self.generator_loss_fn(generated_outputs),
                            self.discriminator_loss_fn(self._discriminate(real, condition), generated_outputs))

    def _report(self, generator_loss, discriminator_loss):
        self.trackers["generator_loss"].update_state(generator_loss)
        self.trackers["discriminator_loss"].update_state(discriminator_loss)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _update_ema(self):
        """The EMA of every generator weight (`tfgen.models.ema.update`)."""
        if self.ema_generator is not None:
            ema.update(self.ema_generator, self.generator, self.ema_decay, self.optimizers["generator"].iterations)

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update(attribute_config(self, self.CONFIG_KEYS), loss=self.loss_name)
        return config
