"""Maximum-likelihood training: the reusable piece of every family with a tractable
likelihood (normalizing flows, autoregressive models).

The objective is the mean negative log-likelihood of the training batch,

    loss = -(1/B) sum_b training_log_prob(x_b),

where `training_log_prob` is `log_prob` unless a subclass trains on a stochastic bound
(flows on discrete data: uniformly dequantized, `tfgen.models.flows.dequantization`).
Both steps report `loss` (nats per example) and `bits_per_dim`
(`tfgen.metrics.bits.bits_per_dim`), and held-out evaluation is
`tfgen.metrics.bits.evaluate_bits_per_dim` over `draws` noise draws.
"""

from tfgen.backend import keras, tf
from tfgen.metrics.bits import bits_per_dim, evaluate_bits_per_dim
from tfgen.models.base import GenerativeModel


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

    def training_log_prob(self, x, condition=None, training=True):
        """The per-example objective `fit` maximizes; defaults to `log_prob`."""
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
            log_prob = self.training_log_prob(x, condition, training=True)
            loss = -tf.reduce_mean(log_prob)
            if self.losses:
                loss += tf.add_n(self.losses)
        self.minimize(tape, loss)
        return self._update_metrics(log_prob)

    def test_step(self, data):
        x, condition = self._split(data)
        return self._update_metrics(self.training_log_prob(x, condition, training=False))

    def evaluate_held_out(self, split, batch_size=256, draws=1, seed=0):
        """Held-out bits/dim with its standard error and the mean log-likelihood,
        averaged over `draws` draws of `training_log_prob`'s noise
        (`tfgen.metrics.bits.evaluate_bits_per_dim`)."""
        return evaluate_bits_per_dim(self, split, self.data_spec, batch_size=batch_size,
                                     num_noise_samples=draws, seed=seed)
