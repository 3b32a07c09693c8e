"""Priors p(z) of the VAE: each has `log_prob(z) -> [B]` and `sample(seed, temperature)`,
one draw per int64 seed (`tfgen.random`), `temperature` scaling the standard-normal noise.
"""

import math

from tfgen.backend import keras, tf
from tfgen.random import per_row_normal, per_row_uniform

_LOG_2PI = math.log(2.0 * math.pi)


def normal_log_density(z, mean, scale):
    """log N(z; mean, diag scale^2), summed over the last axis (broadcasting)."""
    return tf.reduce_sum(-0.5 * ((z - mean) / scale) ** 2 - tf.math.log(scale) - 0.5 * _LOG_2PI, -1)


def _column(temperature):
    return tf.reshape(tf.convert_to_tensor(temperature, tf.float32), [-1, 1])


class StandardNormalPrior(keras.layers.Layer):
    """p(z) = N(0, I)."""

    analytic_kl = True

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim

    def log_prob(self, z):
        return normal_log_density(z, 0.0, 1.0)

    def sample(self, seed, temperature):
        return per_row_normal(seed, [self.latent_dim]) * _column(temperature)


class VampPrior(keras.layers.Layer):
    """The VampPrior (Tomczak & Welling 2018): the mixture of the posteriors of learned
    pseudo-inputs, p(z) = (1/N) sum_n q(z | u_n).

    Args:
      latent_dim: L.
      num_pseudo_inputs: N.
      input_shape: shape of one pseudo-input (the encoder's input space: scaled data).
      posterior_of_inputs: `(inputs [N, *input_shape], condition [N] or None) ->
        (..., mean, scale)`, the model's Gaussian posterior on encoder inputs (its last
        two values are read).
      num_classes: classes of a conditional model (pseudo-input n has class n mod
        num_classes), or None.
    """

    analytic_kl = False

    def __init__(self, latent_dim, num_pseudo_inputs, input_shape, posterior_of_inputs, num_classes=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.num_pseudo_inputs = num_pseudo_inputs
        self._posterior_of_inputs = posterior_of_inputs
        self.pseudo_inputs = self.add_weight(
            name="pseudo_inputs", shape=[num_pseudo_inputs, *input_shape],
            initializer=keras.initializers.RandomUniform(-0.5, 0.5))
        self._conditions = None if not num_classes else tf.range(num_pseudo_inputs) % num_classes

    def _components(self):
        return self._posterior_of_inputs(self.pseudo_inputs, self._conditions)[-2:]

    def log_prob(self, z):
        mean, scale = self._components()  # [N, L]
        per_component = normal_log_density(z[..., tf.newaxis, :], mean, scale)  # [..., N]
        return tf.reduce_logsumexp(per_component, -1) - math.log(self.num_pseudo_inputs)

    def sample(self, seed, temperature):
        mean, scale = self._components()
        index = tf.cast(per_row_uniform(seed, [], salt=3) * self.num_pseudo_inputs, tf.int32)
        index = tf.minimum(index, self.num_pseudo_inputs - 1)
        noise = per_row_normal(seed, [self.latent_dim]) * _column(temperature)
        return tf.gather(mean, index) + tf.gather(scale, index) * noise


class FlowPrior(keras.layers.Layer):
    """A normalizing flow on the latent space, one of tfgen's flows: MAF
    (Papamakarios et al. 2017) or RealNVP (Dinh et al. 2017), unconditional, exact.

    Args:
      flow_class: "MAF" or "RealNVP".
      latent_dim: L.
      num_steps: flow steps.
      hidden_units: width of the flow's networks.
    """

    analytic_kl = False

    def __init__(self, flow_class, latent_dim, num_steps, hidden_units, **kwargs):
        super().__init__(**kwargs)
        from tfgen.models.flows import MAF, RealNVP

        spec = {"event_shape": [latent_dim], "kind": "vector"}
        if flow_class == "MAF":
            self.flow = MAF(spec, num_steps=num_steps, hidden_units=hidden_units, name="flow")
        else:
            self.flow = RealNVP(spec, steps_per_level=num_steps, hidden_units=hidden_units, name="flow")

    def log_prob(self, z):
        return self.flow.log_prob(z)

    def sample(self, seed, temperature):
        return self.flow.sample(seed, temperature)


PRIORS = {
    "standard_normal": "N(0, I)",
    "vamp": "VampPrior: a mixture of the posteriors of learned pseudo-inputs",
    "maf": "a masked autoregressive flow (tfgen's MAF) on the latent space",
    "realnvp": "a RealNVP flow (tfgen's RealNVP) on the latent space",
}
