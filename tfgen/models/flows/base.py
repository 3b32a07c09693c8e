"""Shared machinery of every normalizing flow: data <-> flow space, base density, sampling.

A flow is a bijector f from latent z ~ N(0, I) to data. tfgen composes

    x_unit = data_bijector(flow_bijector(z))

where `flow_bijector` is the learned part a subclass builds (RealNVP, Glow, MAF, ...)
and `data_bijector` is fixed by the data spec: for discrete data a squashed sigmoid onto
the unit cube (a logit pre-processing, Dinh et al. 2017, arXiv:1605.08803, sec. 4.1),
for continuous data the identity. Change of variables gives the exact density

    log p(x) = log N(f^-1(x); 0, I) + log |det d f^-1 / dx|

and discrete data is uniformly dequantized (`tfgen.models.dequantization`), so bits/dim
account for the bin width and compare with autoregressive models on the same data.
"""

from tfgen.backend import keras, tf, tfb, tfd
from tfgen.models.likelihood import DensityModel
from tfgen.random import per_row_normal


class FlowModel(DensityModel):
    """Base class of normalizing flows. Subclasses implement `_flow_bijector`.

    Args:
      data_spec: a `DataSpec` (or dict).
      condition_dim: width of the learned class embedding fed to every coupling or
        autoregressive network of a conditional flow (ignored if unconditional).
      logit_alpha: discrete data u in [0, 1] is mapped to logit(alpha + (1 - 2 alpha) u)
        so the logit stays finite at the edges of the cube.
      dequantization_samples: K, the fixed dequantization draws `log_prob` averages
        over for discrete data (K network passes per row; ignored for continuous data).
      **kwargs: `keras.Model` arguments (`name`).
    """

    family = "flow"
    has_latent = True

    def __init__(self, data_spec, condition_dim=16, logit_alpha=0.05, dequantization_samples=4, **kwargs):
        super().__init__(data_spec, dequantization_samples=dequantization_samples, **kwargs)
        self.condition_dim = int(condition_dim)
        self.logit_alpha = float(logit_alpha)
        if self.data_spec.conditional:
            self.condition_embedding = keras.layers.Embedding(
                self.data_spec.num_classes, self.condition_dim, name="condition_embedding"
            )

    # === Subclass hook ===
    def _flow_bijector(self, condition_features):
        """The learned bijector from latent space to flow space (shape `event_shape`).

        Args:
          condition_features: `[B, condition_dim]` float32 class embedding, or None for
            unconditional flows. Networks should concatenate/broadcast it to their input.
        """
        raise NotImplementedError

    # === Pieces ===
    def _condition_features(self, condition):
        if not self.data_spec.conditional:
            return None
        return self.condition_embedding(self._check_condition(condition))

    def _data_bijector(self):
        """Flow space -> the model's data space (unit cube for discrete data)."""
        if not self.data_spec.is_discrete:
            return tfb.Identity()
        a = self.logit_alpha
        # flow space --sigmoid--> (a, 1-a) --affine--> (0, 1)
        return tfb.Chain([tfb.Scale(1.0 / (1.0 - 2.0 * a)), tfb.Shift(-a), tfb.Sigmoid()])

    def _bijector(self, condition):
        return tfb.Chain([self._data_bijector(), self._flow_bijector(self._condition_features(condition))])

    def _base_distribution(self):
        shape = self.data_spec.event_shape
        return tfd.Independent(
            tfd.Normal(tf.zeros(shape), tf.ones(shape)), reinterpreted_batch_ndims=len(shape)
        )

    def distribution(self, condition=None):
        """The density on the model's data space (unit cube for discrete data)."""
        return tfd.TransformedDistribution(self._base_distribution(), self._bijector(condition))

    def _unit_log_prob(self, u, condition):
        return self.distribution(condition).log_prob(u)

    @property
    def latent_shape(self):
        return self.data_spec.event_shape

    def encode(self, x, condition=None, seed=None):
        """x -> z, the latent that `decode` maps back to x (bin centres for discrete x).

        Deterministic: `seed` is accepted for the contract and unused."""
        x = self._check_x(x)
        return self._bijector(condition).inverse(self._to_model_space(x))

    def decode(self, z, condition=None):
        """z -> x in raw form (quantized for discrete data)."""
        return self._to_raw(self._bijector(condition).forward(tf.convert_to_tensor(z, tf.float32)))

    def sample(self, seed, temperature=1.0, condition=None):
        """One sample per int64 seed; z = temperature * N(0, I) keyed by the row's seed."""
        z = per_row_normal(seed, self.data_spec.event_shape)
        temperature = tf.convert_to_tensor(temperature, tf.float32)
        temperature = tf.reshape(temperature, [-1] + [1] * len(self.data_spec.event_shape))
        return self.decode(z * temperature, condition)

    def get_config(self):
        config = super().get_config()
        config.update(condition_dim=self.condition_dim, logit_alpha=self.logit_alpha)
        return config
