"""GANs through `tfgen train`: the checkpoint holds both networks, the generator's EMA
and both optimizers, and a resumed run ends with exactly the weights and losses of an
uninterrupted one, bit for bit, under the default strategy and on 2 mirrored replicas
(the training noise is keyed by the step counter, not a global RNG, and the batch order
by the seed and the pass over the data); multi-worker runs train, resume and export."""

import json
import os

import numpy as np
import pytest
import yaml

from tfgen import cli
from tfgen.backend import tf
from tfgen.data.datasets import load_dataset
from test_any_family import run_subprocess
from test_multi_worker import run_workers

DATA = {"name": "eight_gaussians", "num_samples": 240, "seed": 0}
# WGAN-GP: the penalty pairs real row i with generated row i, so a batch in another
# order would change it.
GAN = {"class_name": "GAN", "config": {"latent_dim": 2, "generator_units": [8], "discriminator_units": [8],
                                       "loss": "wasserstein", "gradient_penalty_weight": 1.0,
                                       "discriminator_steps": 2, "ema_decay": 0.9}}
BATCH = 50  # 3 steps an epoch; the batches cross passes over the 192 training rows


def write_config(tmp_path, name, strategy=None, epochs=4):
    data = {
        "model": GAN, "data": DATA,
        "training": {"batch_size": BATCH, "epochs": epochs, "learning_rate": 0.01, "verbose": 0,
                     "optimizers": {"discriminator": {"learning_rate": 0.03}}},
        "strategy": strategy or {"name": "default"},
        "checkpoint": {"keep": 5},
        "tensorboard": {"enabled": False},
        "export": {"enabled": True, "base_path": str(tmp_path / f"{name}_export")},
        "run_dir": str(tmp_path / name),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def checkpoint_values(run_dir):
    """Every variable of the newest checkpoint but its save counter."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_dtype_map()
            if name.endswith("VARIABLE_VALUE") and "save_counter" not in name}


def check_resume_is_exact(tmp_path, train, strategy=None):
    """`train([(config, args), ...])` runs `tfgen train` on each in turn; 4 epochs vs 2 +
    resume to 4 end with the same bits in every variable and every reported figure."""
    whole, split = write_config(tmp_path, "whole", strategy), write_config(tmp_path, "split", strategy)
    train([(whole, ["--no-export"]), (split, ["--epochs", "2", "--no-export"]), (split, ["--resume"])])
    whole, resumed = checkpoint_values(tmp_path / "whole"), checkpoint_values(tmp_path / "split")
    assert sorted(whole) == sorted(resumed)
    names = " ".join(whole)
    assert "ema_generator" in names and "discriminator" in names and "moving_mean" in names
    steps = {n: int(v) for n, v in whole.items() if n.endswith("_iterations/.ATTRIBUTES/VARIABLE_VALUE")}
    rows = len(load_dataset(DATA).splits["train"].x)
    assert sorted(steps.values()) == [4 * (rows // BATCH), 8 * (rows // BATCH)]  # 2 critic steps per step
    # The resumed run reads the batches the uninterrupted one read, and its noise is
    # keyed by the step counter.
    for name, value in whole.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    metrics = json.loads((tmp_path / "split" / "metrics.json").read_text())
    whole_history = json.loads((tmp_path / "whole" / "metrics.json").read_text())["history"]
    assert sorted(metrics["history"]) == sorted(whole_history)
    for name, values in metrics["history"].items():
        np.testing.assert_array_equal(values, whole_history[name][2:], err_msg=name)
    assert metrics["initial_epoch"] == 2 and metrics["status"] == "completed"
    assert np.isfinite([metrics["held_out"]["generator_loss"], metrics["held_out"]["discriminator_loss"]]).all()
    loaded = tf.saved_model.load(metrics["export_dir"])
    assert {"sample", "decode", "describe"} <= set(loaded.signatures) and "log_prob" not in loaded.signatures
    samples = loaded.signatures["sample"](seed=tf.range(5, dtype=tf.int64), temperature=tf.ones([5]))["samples"].numpy()
    assert samples.shape == (5, 2) and np.isfinite(samples).all()
    return metrics


@pytest.mark.slow  # 13 s; by default tests/training/test_any_family.py resumes the adversarial toy
def test_default_strategy_resume_is_exact(tmp_path):
    def train(runs):
        for config, args in runs:
            assert cli.main(["train", str(config), *args]) == 0, f"tfgen train {config} {args} failed"

    check_resume_is_exact(tmp_path, train)


# ~3x the time of test_default_strategy_resume_is_exact; the default run covers the mirrored resume
# path with test_any_family's two-optimizer toy.
@pytest.mark.slow
def test_mirrored_resume_is_exact(tmp_path):
    """On 2 replicas too: the generator's batch norm synchronizes its statistics across
    replicas (`networks._batch_norm`), so the per-replica moving statistics a checkpoint
    averages are equal and restore exactly. The three runs share one process."""
    def train(runs):
        commands = [arg for config, args in runs for arg in ["--then", "train", str(config), *args]]
        run_subprocess(commands[1:], logical_cpus=2)

    metrics = check_resume_is_exact(tmp_path, train, {"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})
    assert metrics["num_replicas"] == 2


@pytest.mark.slow  # the default run keeps one GAN training test: the default-strategy resume
def test_mirrored_strategy_trains_and_exports(tmp_path):
    config = write_config(tmp_path, "mirrored", {"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]}, epochs=2)
    run_subprocess(["train", str(config)], logical_cpus=2)
    metrics = json.loads((tmp_path / "mirrored" / "metrics.json").read_text())
    assert metrics["num_replicas"] == 2 and metrics["epochs_completed"] == 2
    values = checkpoint_values(tmp_path / "mirrored")
    ema = [v for n, v in values.items() if "ema_generator" in n]
    assert ema and all(np.isfinite(v).all() for v in ema)
    assert tf.saved_model.load(metrics["export_dir"]).signatures["decode"](z=tf.zeros([1, 2]))["x"].shape == (1, 2)


@pytest.mark.slow
def test_two_workers_train_resume_and_export(tmp_path):
    config = write_config(tmp_path, "mw", {"name": "multi_worker"}, epochs=2)
    run_workers(config, [["--run-dir", str(tmp_path / "mw")], ["--run-dir", str(tmp_path / "mw1")]])
    metrics = json.loads((tmp_path / "mw" / "metrics.json").read_text())
    assert metrics["num_workers"] == 2 and metrics["epochs_completed"] == 2
    run_workers(config, [["--run-dir", str(tmp_path / "mw"), "--resume", "--epochs", "3", "--no-export"]] * 2)
    resumed = json.loads((tmp_path / "mw" / "metrics.json").read_text())
    assert resumed["initial_epoch"] == 2 and resumed["epochs_completed"] == 3
    assert np.isfinite(resumed["history"]["generator_loss"]).all()
