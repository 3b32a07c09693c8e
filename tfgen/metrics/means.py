"""Running means of several named figures in one Keras metric.

A model that reports many figures per step (a VAE: loss, reconstruction, KL, bits/dim)
would otherwise hold one `keras.metrics.Mean` per figure, each two variables updated
every step; with small networks those updates cost a measurable share of the step
(bench/vae.py). This metric holds one vector of totals and one count.
"""

from tfgen.backend import keras, tf


class FigureMeans(keras.metrics.Metric):
    """Means of `names`, each updated once per step with a scalar.

    `update_state({name: value})` needs every name; `result()` is a vector in `names`
    order and `results()` the dict `train_step` returns.

    Args:
      names: the figures' names, in order.
      name: the metric's name.
    """

    def __init__(self, names, name="figures", **kwargs):
        super().__init__(name=name, **kwargs)
        self.names = tuple(names)
        self.totals = self.add_weight(name="totals", shape=[len(self.names)], initializer="zeros")
        self.count = self.add_weight(name="count", shape=[], initializer="zeros")

    def update_state(self, figures):
        values = tf.stack([tf.cast(figures[name], tf.float32) for name in self.names])
        self.totals.assign_add(values)
        self.count.assign_add(1.0)

    def result(self):
        return self.totals / tf.maximum(self.count, 1.0)

    def results(self):
        return dict(zip(self.names, tf.unstack(self.result())))

    def reset_state(self):
        self.totals.assign(tf.zeros_like(self.totals))
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "names": list(self.names)}
