"""The contract every tfgen model keeps (docs/architecture.md, "The model contract").

A model is a `tf_keras.Model` that declares what it can do and how it trains:

- capabilities, as class attributes: `family`, `log_prob_kind` (a
  `tfgen.contract.LogProbKind`; NONE when there is no likelihood), `has_latent`
  (`encode`/`decode` exist), `stochastic_encoder` (`encode` draws, keyed by a seed);
- `sample(seed, temperature=1.0, condition=None)` -> one sample per int64 seed, in the
  raw form `log_prob` accepts; `log_prob(x, condition=None)` -> `[B]` nats;
  `encode(x, condition=None, seed=None)` / `decode(z, condition=None)`; a stochastic
  encoder also gives `posterior(x, condition=None)` -> `(mean, scale)`, each
  `[B, *latent_shape]`: the encoder's Gaussian q(z|x) before any posterior flow (the
  `encode` signature returns them beside its seeded draw z);
- training, declared by the model: `initialize_from_data(split)` (once, before a new
  run's first epoch), `optimizer_names` (one optimizer, or e.g.
  `("generator", "discriminator")`) and `variables_for_optimizer(name)`; `train_step`
  / `test_step` returning named figures; `reported_losses`, the figures that must stay
  finite; `evaluate_held_out(split, ...)`, a dict of named held-out figures;
- `call(inputs)`, which runs every network the model trains, so one call creates all
  weights; `data_spec` (a `DataSpec`) and `get_config()` listing every constructor
  argument;
- training noise (a VAE's posterior draws, a flow's dequantization, a GAN's latents, a
  diffusion model's noise) drawn statelessly from `training_noise_seed(draw)`, keyed by
  `noise_seed`, the replica and the first optimizer's step counter, so a resumed run draws
  exactly the noise the uninterrupted run would have drawn.

Maximum-likelihood training (flows, autoregressive models) is the reusable
`tfgen.models.likelihood.LikelihoodModel`. The trainer, checkpoints, NaN guard,
TensorBoard and export read only what this base class declares.

Datasets fed to `fit` yield `x` for unconditional models and `(x, condition)` for
conditional ones (`condition` int32 class ids `[B]`).
"""

import importlib

from tfgen.backend import keras, tf
from tfgen.contract import LogProbKind
from tfgen.data.spec import DataSpec
from tfgen.errors import UserError
from tfgen.random import training_seed

_REGISTRY = {}
#: The cap on K of an estimated log_prob: each row costs K passes of the model.
MAX_LOG_PROB_SAMPLES = 4096
#: The end of what an input check says of an input holding NaN or Inf ("x " + this).
NONFINITE_INPUT_MESSAGE = "contains NaN or Inf"


def check_log_prob_samples(value, key="log_prob_samples"):
    """K of an estimated log_prob: an integer in 1 .. MAX_LOG_PROB_SAMPLES."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value \
            or not 1 <= int(value) <= MAX_LOG_PROB_SAMPLES:
        raise UserError(f"{key} must be an integer in 1 .. {MAX_LOG_PROB_SAMPLES} "
                        f"(each row costs K passes of the model), got {value!r}")
    return int(value)


def register(cls):
    """Registers a model class under its class name, for configs and exports.

    Also registers it with Keras serialization under package "tfgen", so
    `keras.models.load_model` and `from_config` find it.
    """
    name = cls.__name__
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"model class name {name!r} is registered twice")
    keras.saving.register_keras_serializable(package="tfgen")(cls)
    _REGISTRY[name] = cls
    return cls


def get_model_class(name):
    """The model class a config names.

    `name` is a registered class name ("RealNVP"), or `module:ClassName` for a
    `GenerativeModel` subclass of the user's own (importable from `sys.path`), which
    tfgen trains and exports like its own without registering it.
    """
    if ":" in name:
        return _import_model_class(name)
    importlib.import_module("tfgen.models")  # imports every family, filling the registry

    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model class {name!r}; known: {sorted(_REGISTRY)} "
                        "(or module:ClassName for a class of your own)") from None


def _import_model_class(path):
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"model class {path!r}: cannot import module {module_name!r} ({e})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, GenerativeModel)):
        raise UserError(f"model class {path!r}: {module_name} has no GenerativeModel subclass {class_name!r}")
    return cls


def registered_models():
    importlib.import_module("tfgen.models")

    return dict(_REGISTRY)


def model_from_config(class_name, config):
    """Builds a registered model from its class name and `get_config()` dict."""
    return get_model_class(class_name).from_config(config)


class GenerativeModel(keras.Model):
    """Base class of every tfgen model: capabilities, the contract methods, and the
    training declarations the trainer reads. See the module docstring.

    Args:
      data_spec: a `DataSpec` or its dict form.
      noise_seed: seeds the training noise (`training_noise_seed`).
      **kwargs: passed to `keras.Model` (e.g. `name`).
    """

    #: "flow", "vae", "gan", "autoregressive", ...
    family = None
    #: a `tfgen.contract.LogProbKind`: what `log_prob` means (NONE: there is none).
    log_prob_kind = LogProbKind.EXACT
    #: whether `decode` exists (and `encode`, unless `has_encoder` is False).
    has_latent = False
    #: whether a model with a latent space has `encode` too (a GAN only decodes).
    has_encoder = True
    #: whether `encode` draws from a posterior, keyed by a per-row `seed`.
    stochastic_encoder = False
    #: the constructor argument that is K of an estimated `log_prob` (draws per row),
    #: which `tfgen export --log-prob-samples` overrides; None when `log_prob` is exact.
    log_prob_samples_key = None
    #: K itself (recorded in the export's metadata); None when `log_prob` is exact.
    log_prob_samples = None
    #: a description (recorded in tfgen.json) of the cheaper estimate of log p(x | y) that
    #: `classify_log_prob` gives the export's classify, where a family has one (the DDPM:
    #: a subset of its bound's terms); None: classify calls the log_prob signature.
    classify_estimate = None
    #: the optimizers the model trains with, by name; `training.optimizers.<name>` in a
    #: config overrides the training-level optimizer settings for one of them.
    optimizer_names = ("optimizer",)
    #: the parts fine-tuning can freeze by name (`training.freeze`, `tfgen train --freeze`),
    #: e.g. a VAE's ("encoder", "decoder", "prior"); `part_variables` gives each one's.
    freezable_parts = ()

    def __init__(self, data_spec, noise_seed=0, **kwargs):
        super().__init__(**kwargs)
        self.data_spec = DataSpec.from_dict(data_spec)
        self.noise_seed = int(noise_seed)
        self._frozen = frozenset()

    # === Contract ===
    def log_prob(self, x, condition=None):
        raise NotImplementedError(f"{type(self).__name__} has no log_prob")

    def sample(self, seed, temperature=1.0, condition=None):
        raise NotImplementedError

    def importance_weighted_bounds(self, x, condition=None):
        """{"log_prob", "elbo"} `[B]` nats from the same posterior draws: models whose
        `log_prob_kind` is IMPORTANCE_WEIGHTED_BOUND (the log_prob signature returns both)."""
        raise NotImplementedError(f"{type(self).__name__} has no importance-weighted bound")

    def classify_log_prob(self, x, condition):
        """`[B]` nats: the estimate of log p(x | y) that `classify_estimate` describes."""
        raise NotImplementedError(f"{type(self).__name__} has no classify estimate")

    def encode(self, x, condition=None, seed=None):
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    def decode(self, z, condition=None):
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    def posterior(self, x, condition=None):
        """Stochastic encoders: `(mean, scale)` of the Gaussian q(z|x), `[B, *latent_shape]`
        each, before any posterior flow."""
        raise NotImplementedError(f"{type(self).__name__} has no stochastic encoder")

    @property
    def latent_shape(self):
        """Shape of one latent `z` (for the `decode` signature)."""
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    # === Training declarations ===
    def initialize_from_data(self, split):
        """Data-dependent initialization, called once by the trainer before the first
        epoch of a new run (never on resume, where the checkpoint wins); e.g. pPCA's
        closed-form maximum-likelihood fit. Default: nothing.

        Args:
          split: the training `tfgen.data.Split` (numpy `x`, `y`).
        """

    def compile(self, optimizer="rmsprop", **kwargs):
        """Keras `compile`, with one optimizer or a dict `{name: optimizer}` naming
        exactly `optimizer_names`. `self.optimizers` holds them by name; Keras'
        `self.optimizer` is the first."""
        optimizers = optimizer if isinstance(optimizer, dict) else {self.optimizer_names[0]: optimizer}
        if sorted(optimizers) != sorted(self.optimizer_names):
            raise UserError(f"{type(self).__name__} trains with optimizers {list(self.optimizer_names)}, "
                            f"got {sorted(optimizers)}")
        self.optimizers = {name: keras.optimizers.get(optimizers[name]) for name in self.optimizer_names}
        super().compile(optimizer=self.optimizers[self.optimizer_names[0]], **kwargs)

    def variables_for_optimizer(self, name):
        """The variables optimizer `name` updates (all trainable ones by default)."""
        return self.trainable_variables

    def part_variables(self, name):
        """The trainable variables of freezable part `name` (default: those of the layer
        held in the attribute of that name)."""
        return getattr(self, name).trainable_variables

    def freeze(self, names):
        """Excludes the variables of the named `freezable_parts` from every update
        (`minimize`); call before `fit` traces `train_step`. An empty list unfreezes."""
        unknown = sorted(set(names) - set(self.freezable_parts))
        if unknown:
            declared = f"its freezable parts are {list(self.freezable_parts)}" if self.freezable_parts \
                else "it declares no freezable parts"
            raise UserError(f"cannot freeze {unknown[0]!r} of {type(self).__name__}: {declared}")
        frozen = set()
        for name in names:
            variables = self.part_variables(name)
            if not variables:
                raise UserError(f"cannot freeze {name!r} of {type(self).__name__}: that part has no "
                                "trainable variables in this configuration")
            frozen |= {v.ref() for v in variables}
        self._frozen = frozenset(frozen)

    def trained_variables(self, name):
        """What optimizer `name` updates: `variables_for_optimizer(name)` less frozen parts."""
        return [v for v in self.variables_for_optimizer(name) if v.ref() not in self._frozen]

    @property
    def reported_losses(self):
        """Names of the figures `train_step` reports that must stay finite."""
        return ("loss",)

    def minimize(self, tape, loss, optimizer_name=None):
        """One update of optimizer `optimizer_name` (default: the only one) on `loss`.

        `loss` must have been computed under `tape`. Gradients are summed across replicas
        by the optimizer, so they are divided by the number of replicas: the update then
        matches single-device training on the global batch. A trainer may install a
        `step_guard` (`tfgen.training.faults.NonFiniteStepGuard`) that checks the loss
        and the summed gradients are finite (and may apply the update only then).
        """
        name = optimizer_name or self.optimizer_names[0]
        variables = self.trained_variables(name)
        if not variables:  # every variable it updates is frozen
            return
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        gradients = tape.gradient(loss, variables, output_gradients=tf.constant(1.0 / replicas, loss.dtype))
        guard = getattr(self, "step_guard", None)
        if guard is not None:
            guard.apply(self.optimizers[name], gradients, variables, loss)
        else:
            self.optimizers[name].apply_gradients(zip(gradients, variables))

    def training_noise_seed(self, draw, draws_per_step=1):
        """The stateless seed (`tf.random.stateless_*`) of training draw `draw`, 0 ..
        `draws_per_step` - 1, of this step of the first optimizer (-1: `test_step`'s
        draw), on this replica: `tfgen.random.training_seed`. Before `compile`, step 0."""
        optimizers = getattr(self, "optimizers", None)
        step = optimizers[self.optimizer_names[0]].iterations if optimizers else 0
        # Keras counts the batches of each `evaluate` from 0 (`Model._test_counter`), and
        # `evaluate_held_out` does the same.
        batch = getattr(self, "_test_counter", None) if draw < 0 else None
        return training_seed(self.noise_seed, step, draw, draws_per_step,
                             evaluation_batch=0 if batch is None else batch)

    def evaluate_held_out(self, split, batch_size=256, draws=1, seed=0):
        """Named figures on a held-out `tfgen.data.Split`: by default the means of what
        `test_step` reports over the split (subclasses give better figures, e.g. bits/dim
        with its standard error). Traced without autograph, which would re-read source
        files while tracing.

        Args:
          split: the split.
          batch_size: examples per call.
          draws: for stochastic figures, independent evaluations averaged per example
            (dequantization noise, posterior samples); ignored by deterministic ones.
          seed: seeds TensorFlow's global random state first, so figures reproduce.
        """
        from tfgen.data.datasets import to_tf_dataset

        tf.random.set_seed(seed)
        strategy = self.distribute_strategy
        dataset = strategy.experimental_distribute_dataset(
            to_tf_dataset(split, self.data_spec, batch_size, shuffle=False))
        counter = getattr(self, "_test_counter", None)

        def run_step(batch):
            outputs = self.test_step(batch)
            if counter is not None:  # each batch draws its own evaluation noise, as in `evaluate`
                with tf.control_dependencies(tf.nest.flatten(outputs)):
                    counter.assign_add(1)
            return outputs

        step = tf.function(lambda batch: strategy.run(run_step, args=(batch,)), autograph=False)
        for metric in self.metrics:
            metric.reset_state()
        if counter is not None:
            counter.assign(0)
        for batch in dataset:
            step(batch)
        return {metric.name: float(metric.result()) for metric in self.metrics}

    # === Input checks (in the graph, so exported signatures check too) ===
    def _check_x(self, x):
        """`x` as float32, asserted finite and, for discrete data, within the levels."""
        x = tf.convert_to_tensor(x, tf.float32)
        x = tf.debugging.assert_all_finite(x, f"x {NONFINITE_INPUT_MESSAGE}")
        spec = self.data_spec
        if spec.is_discrete:
            tf.debugging.assert_greater_equal(x, 0.0, message="x must be >= 0")
            tf.debugging.assert_less_equal(
                x, float(spec.levels - 1), message=f"x must be <= levels-1 = {spec.levels - 1}"
            )
        return x

    def _check_condition(self, condition):
        """`condition` as int32 `[B]`, asserted within 0 .. num_classes-1."""
        condition = tf.cast(condition, tf.int32)
        tf.debugging.assert_non_negative(condition, message="condition must be >= 0")
        tf.debugging.assert_less(
            condition, self.data_spec.num_classes,
            message=f"condition must be < num_classes={self.data_spec.num_classes}",
        )
        return condition

    # === Keras plumbing ===
    def _split(self, data):
        """`x` or `(x, condition)` -> (x, condition), checked against the data spec."""
        if isinstance(data, (tuple, list)):
            x, condition = (data[0], data[1] if len(data) > 1 else None)
        else:
            x, condition = data, None
        if self.data_spec.conditional and condition is None:
            raise UserError(f"{self.name} is conditional: feed (x, condition) pairs")
        if not self.data_spec.conditional:
            condition = None
        return x, condition

    # === Config ===
    def get_config(self):
        return {"data_spec": self.data_spec.to_dict(), "noise_seed": self.noise_seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
