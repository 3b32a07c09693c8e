"""The contract every tfgen model keeps (DESIGN.md section 3).

A model is a `tf_keras.Model` with:

- `log_prob(x, condition=None)` -> `[B]` nats of the data as the user holds it;
- `sample(seed, temperature=1.0, condition=None)` -> one sample per int64 seed, in the
  raw form `log_prob` accepts;
- optional `encode(x, condition=None)` / `decode(z, condition=None)`;
- `train_step` / `test_step` reporting `loss` (mean negative log-likelihood in nats per
  example) and `bits_per_dim`, so `fit`/`evaluate` work under any `tf.distribute`
  strategy;
- `data_spec` (a `DataSpec`) and `get_config()` listing every constructor argument.

Datasets fed to `fit` yield `x` for unconditional models and `(x, condition)` for
conditional ones (`condition` int32 class ids `[B]`).
"""

from tfgen.backend import keras, tf
from tfgen.contract import LogProbKind
from tfgen.metrics.bits import bits_per_dim
from tfgen.data.spec import DataSpec
from tfgen.errors import UserError

_REGISTRY = {}


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
    """The registered model class called `name`; the error lists the known names."""
    import tfgen.models  # noqa: F401  (imports every family, filling the registry)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model class {name!r}; known: {sorted(_REGISTRY)}") from None


def registered_models():
    import tfgen.models  # noqa: F401

    return dict(_REGISTRY)


def model_from_config(class_name, config):
    """Builds a registered model from its class name and `get_config()` dict."""
    return get_model_class(class_name).from_config(config)


class GenerativeModel(keras.Model):
    """Base class of every tfgen model. Subclasses implement `log_prob` and `sample`.

    Args:
      data_spec: a `DataSpec` or its dict form.
      **kwargs: passed to `keras.Model` (e.g. `name`).
    """

    #: "flow", "vae", "gan", "autoregressive", ...
    family = None
    #: a `tfgen.contract.LogProbKind`: what `log_prob` means (NONE: there is none).
    log_prob_kind = LogProbKind.EXACT
    #: whether `encode`/`decode` exist.
    has_latent = False
    #: whether `encode` draws from a posterior, keyed by a per-row `seed`.
    stochastic_encoder = False

    def __init__(self, data_spec, **kwargs):
        super().__init__(**kwargs)
        self.data_spec = DataSpec.from_dict(data_spec)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.bits_per_dim_tracker = keras.metrics.Mean(name="bits_per_dim")

    # === Contract ===
    def log_prob(self, x, condition=None):
        raise NotImplementedError

    def sample(self, seed, temperature=1.0, condition=None):
        raise NotImplementedError

    def encode(self, x, condition=None):
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    def decode(self, z, condition=None):
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    @property
    def latent_shape(self):
        """Shape of one latent `z` (for the `decode` signature)."""
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    def training_log_prob(self, x, condition=None, training=True):
        """The per-example objective `fit` maximizes; defaults to `log_prob`.

        Flows on discrete data override it with randomly dequantized data.
        """
        return self.log_prob(x, condition)

    # === Keras plumbing ===
    def call(self, inputs, training=False):
        x, condition = self._split(inputs)
        return self.training_log_prob(x, condition, training=training) if training else self.log_prob(x, condition)

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
            log_prob = self.training_log_prob(x, condition, training=True)
            loss = -tf.reduce_mean(log_prob)
            if self.losses:
                loss += tf.add_n(self.losses)
            # Gradients are summed across replicas by the optimizer; scale so the update
            # matches single-device training on the global batch.
            scaled_loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_metrics(log_prob)

    def test_step(self, data):
        x, condition = self._split(data)
        return self._update_metrics(self.training_log_prob(x, condition, training=False))

    # === Config ===
    def get_config(self):
        return {"data_spec": self.data_spec.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
