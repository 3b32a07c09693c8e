"""Every family with a stochastic objective resumes exactly: a run stopped after an
epoch and resumed ends with the weights, optimizer state and reported figures of the run
that was never stopped, bit for bit. Its training noise (a VAE's posterior draws, a
flow's dequantization, a score model's noise levels and perturbations, a DDPM's
validation timesteps) is keyed by `noise_seed` and the optimizer's step counter
(`GenerativeModel.training_noise_seed`), not drawn from a global random state that
starts afresh in every process. The GAN's own resume test is tests/training/test_gan_training.py."""

import json

import numpy as np
import pytest
import yaml

from tfgen import cli
from test_gan_training import checkpoint_values

MOONS = {"name": "two_moons", "num_samples": 400, "seed": 0}
DIGITS = {"name": "digits", "seed": 0}
FAMILIES = {
    "vae": ({"class_name": "VAE", "config": {"latent_dim": 2, "network": "mlp", "hidden_units": [8],
                                             "training_samples": 2}}, MOONS),
    "discrete_flow": ({"class_name": "RealNVP", "config": {"num_levels": 1, "steps_per_level": 1,
                                                           "hidden_units": 4, "num_hidden_layers": 1}}, DIGITS),
    "score": ({"class_name": "NCSN", "config": {"num_levels": 4, "hidden_units": [8], "embedding_dim": 4,
                                                "ema_decay": 0.9}}, MOONS),
    "ddpm": ({"class_name": "DDPM", "config": {"timesteps": 50, "network": "mlp", "hidden_units": [8],
                                               "embedding_dim": 4, "ema_decay": 0.9}}, MOONS),
}


# The GAN's own resume test is in test_gan_training.py; its validation z is checked here.
EVALUATED = {**FAMILIES, "gan": ({"class_name": "GAN", "config": {"latent_dim": 2, "generator_units": [8],
                                                                  "discriminator_units": [8]}}, MOONS)}


def write_config(tmp_path, family, name):
    model, data = EVALUATED[family]
    config = {
        "model": model, "data": data,
        "training": {"batch_size": 32, "epochs": 2, "steps_per_epoch": 3, "learning_rate": 0.01,
                     "verbose": 0, "eval_noise_draws": 1},
        "checkpoint": {"keep": 3},
        "tensorboard": {"enabled": False},
        "export": {"enabled": False},
        "run_dir": str(tmp_path / name),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_resumed_run_is_the_uninterrupted_run_bit_for_bit(tmp_path, family):
    whole, split = write_config(tmp_path, family, "whole"), write_config(tmp_path, family, "split")
    assert cli.main(["train", str(whole)]) == 0
    assert cli.main(["train", str(split), "--epochs", "1"]) == 0
    assert cli.main(["train", str(split), "--resume"]) == 0
    expected, resumed = checkpoint_values(tmp_path / "whole"), checkpoint_values(tmp_path / "split")
    assert sorted(resumed) == sorted(expected)
    steps = [int(v) for n, v in expected.items() if n.endswith("_iterations/.ATTRIBUTES/VARIABLE_VALUE")]
    assert steps == [6]
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    metrics = json.loads((tmp_path / "split" / "metrics.json").read_text())
    whole_metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert metrics["initial_epoch"] == 1 and metrics["held_out"] == whole_metrics["held_out"]
    history, whole_history = metrics["history"], whole_metrics["history"]
    assert sorted(history) == sorted(whole_history) and any(n.startswith("val_") for n in history)
    for name, values in history.items():
        np.testing.assert_array_equal(values, whole_history[name][1:], err_msg=name)


@pytest.mark.parametrize("family", sorted(EVALUATED))
def test_each_evaluation_batch_draws_its_own_noise(tmp_path, family):
    """The same rows evaluated twice in one `evaluate`, as two batches, are not two copies
    of one figure: the second batch's noise is not the first's. Evaluating again gives the
    same figures (each `evaluate` counts its batches from 0)."""
    from tfgen.data.datasets import load_dataset
    from tfgen.training.config import load_config
    from tfgen.training.optimizers import build_optimizer
    from tfgen.training.trainer import build_model

    config = load_config(str(write_config(tmp_path, family, "eval")))
    dataset = load_dataset(config.data.to_load_dict())
    model = build_model(config.model.class_name, {**config.model.config, "data_spec": dataset.spec.to_dict()})
    model.compile(optimizer={name: build_optimizer(config.training.optimizer_settings(name), 10)
                             for name in model.optimizer_names})
    x = dataset.splits["train"].x[:32].astype("float32")
    once = model.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    twice = model.evaluate(np.concatenate([x, x]), batch_size=32, verbose=0, return_dict=True)
    assert twice != once
    assert model.evaluate(np.concatenate([x, x]), batch_size=32, verbose=0, return_dict=True) == twice
