"""Configs for the training tests, on the tiny real flow `toy_models.DiagonalAffineFlow`
(trains in seconds yet exercises the real `FlowModel` machinery, checkpoints and `fit`).
"""

import copy

FLOW = "toy_models:DiagonalAffineFlow"

BASE_CONFIG = {
    "model": {"class_name": FLOW, "config": {"init_log_scale": 1.5}},
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
