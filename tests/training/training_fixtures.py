"""A tiny real flow and configs for the training tests.

`DiagonalAffineFlow` is a complete (if weak) normalizing flow, x = mu + exp(s) * z with
learned per-dimension `mu` and `s`, so training tests run in seconds yet exercise the
real `FlowModel` machinery, checkpoints and `fit`.
"""

import copy

from tfgen.backend import tfb
from tfgen.models.base import register
from tfgen.models.flows.base import FlowModel


@register
class DiagonalAffineFlow(FlowModel):
    """x = shift + exp(log_scale) * z, one learned shift and log-scale per dimension.

    Args:
      data_spec: the `DataSpec`.
      init_log_scale: initial log-scale (a far-off start makes learning visible).
      **kwargs: `FlowModel` arguments.
    """

    def __init__(self, data_spec, init_log_scale=0.0, **kwargs):
        super().__init__(data_spec, **kwargs)
        self.init_log_scale = float(init_log_scale)
        shape = self.data_spec.event_shape
        self.shift = self.add_weight(name="shift", shape=shape, initializer="zeros")
        self.log_scale = self.add_weight(
            name="log_scale", shape=shape, initializer=_constant(self.init_log_scale)
        )

    def _flow_bijector(self, condition_features):
        return tfb.Chain([tfb.Shift(self.shift), tfb.Scale(log_scale=self.log_scale)])

    def get_config(self):
        config = super().get_config()
        config.update(init_log_scale=self.init_log_scale)
        return config


def _constant(value):
    from tfgen.backend import keras

    return keras.initializers.Constant(value)


BASE_CONFIG = {
    "model": {"class_name": "DiagonalAffineFlow", "config": {"init_log_scale": 1.5}},
    "data": {"name": "two_moons", "num_samples": 800, "seed": 0},
    "training": {"batch_size": 64, "epochs": 2, "learning_rate": 0.05, "verbose": 0, "eval_noise_draws": 1},
    "checkpoint": {"keep": 3},
    "tensorboard": {"enabled": True, "sample_every": 1, "num_samples": 16},
    "export": {"enabled": False},
}


def make_config(tmp_path, **sections):
    """BASE_CONFIG with `sections` merged in (one level deep) and run_dir under tmp_path."""
    data = copy.deepcopy(BASE_CONFIG)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    data.setdefault("run_dir", str(tmp_path / "run"))
    return data
