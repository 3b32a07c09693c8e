"""The trainer trains what a model declares, whatever its family.

Two test-only models (tests/toy_models.py) that the trainer has never heard of, one with
two optimizers and an adversarial step, one with a stochastic encoder and a bound as its
objective, go through `tfgen train` under the default strategy and a mirrored one on 2
logical CPUs: train, checkpoint every optimizer, resume, report their own held-out
figures, and export.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tfgen import cli
from tfgen.backend import tf

HERE = os.path.dirname(os.path.abspath(__file__))

TOYS = {
    "adversarial": {
        "model": {"class_name": "toy_models:ToyAdversarial", "config": {"latent_dim": 2, "hidden_units": 8}},
        "training": {"optimizers": {"discriminator": {"learning_rate": 0.002, "optimizer": "sgd"}}},
        "figures": ("generator_loss", "discriminator_loss"),
        "optimizers": 2,
        "signatures": {"sample"},
    },
    "latent": {
        "model": {"class_name": "toy_models:ToyLatentGaussian", "config": {"latent_dim": 1}},
        "training": {},
        "figures": ("loss",),
        "optimizers": 1,
        "signatures": {"sample", "log_prob", "encode", "decode"},
    },
}
STEPS = 4


def write_config(tmp_path, toy, strategy, epochs=1):
    spec = TOYS[toy]
    data = {
        "model": spec["model"],
        "data": {"name": "two_moons", "num_samples": 600, "seed": 0},
        "training": {"batch_size": 32, "epochs": epochs, "steps_per_epoch": STEPS, "learning_rate": 0.01,
                     "verbose": 0, "eval_noise_draws": 1, **spec["training"]},
        "strategy": strategy,
        "checkpoint": {"keep": 3},
        "tensorboard": {"enabled": True, "sample_every": 1, "num_samples": 16},
        "export": {"enabled": True, "base_path": str(tmp_path / "export")},
        "run_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def optimizer_steps(run_dir):
    """{checkpoint variable: value} of every optimizer's step counter in the newest checkpoint."""
    prefix = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    reader = tf.train.load_checkpoint(prefix)
    return {name: int(reader.get_tensor(name)) for name in reader.get_variable_to_dtype_map()
            if name.endswith("_iterations/.ATTRIBUTES/VARIABLE_VALUE")}


def check_run(tmp_path, toy, epochs):
    spec = TOYS[toy]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == epochs
    # The model's own figures, not a flow's bits/dim, in the history and held out.
    assert set(spec["figures"]) <= set(metrics["history"]) and "bits_per_dim" not in metrics["history"]
    assert set(spec["figures"]) <= set(metrics["held_out"])
    assert all(np.isfinite(metrics["held_out"][name]) for name in spec["figures"])
    # Every optimizer's state is checkpointed, and each took every step.
    steps = optimizer_steps(tmp_path / "run")
    assert len(steps) == spec["optimizers"]
    assert set(steps.values()) == {STEPS * epochs}
    return metrics


def check_export(tmp_path, toy, version):
    spec = TOYS[toy]
    version_dir = tmp_path / "export" / str(version)
    loaded = tf.saved_model.load(str(version_dir))
    assert spec["signatures"] <= set(loaded.signatures)
    if "log_prob" not in spec["signatures"]:
        assert "log_prob" not in loaded.signatures
    seed = tf.constant([3, 1, 4], tf.int64)
    samples = loaded.signatures["sample"](seed=seed, temperature=tf.ones([3]))["samples"].numpy()
    assert samples.shape == (3, 2) and np.isfinite(samples).all()
    # The same seed gives the same sample in any batch.
    alone = loaded.signatures["sample"](seed=seed[1:2], temperature=tf.ones([1]))["samples"].numpy()
    np.testing.assert_allclose(alone[0], samples[1], rtol=1e-6)
    return loaded, samples


@pytest.mark.parametrize("toy", sorted(TOYS))
def test_default_strategy_trains_resumes_and_exports(tmp_path, toy):
    config = write_config(tmp_path, toy, {"name": "default"})
    assert cli.main(["train", str(config), "--epochs", "1", "--no-export"]) == 0
    check_run(tmp_path, toy, epochs=1)
    assert cli.main(["train", str(config), "--resume", "--epochs", "2"]) == 0
    metrics = check_run(tmp_path, toy, epochs=2)
    assert metrics["initial_epoch"] == 1
    loaded, samples = check_export(tmp_path, toy, version=1)
    if toy == "latent":
        # A stochastic encoder: `encode` takes a seed, and the seed decides the code.
        x = tf.constant(samples)
        codes = [loaded.signatures["encode"](x=x, seed=tf.constant(s, tf.int64))["z"].numpy()
                 for s in ([0, 1, 2], [0, 1, 2], [5, 6, 7])]
        np.testing.assert_array_equal(codes[0], codes[1])
        assert not np.allclose(codes[0], codes[2])
        log_prob = loaded.signatures["log_prob"](x=x)["log_prob"].numpy()
        assert log_prob.shape == (3,) and np.isfinite(log_prob).all()
    # `tfgen export RUN_DIR` rebuilds the model from the run and exports it again.
    assert cli.main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "export")]) == 0
    _, again = check_export(tmp_path, toy, version=2)
    np.testing.assert_allclose(again, samples, rtol=1e-6)


def test_nan_guard_reads_every_reported_loss(tmp_path, capsys):
    """A diverging discriminator stops the run although `loss` is not reported at all."""
    config = write_config(tmp_path, "adversarial", {"name": "default"}, epochs=3)
    data = yaml.safe_load(config.read_text())
    data["training"]["optimizers"]["discriminator"] = {"learning_rate": 1e38, "optimizer": "sgd"}
    config.write_text(yaml.safe_dump(data))
    assert cli.main(["train", str(config), "--no-export"]) == 1
    assert "non-finite" in capsys.readouterr().err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and "loss" in metrics["reason"]


def test_unknown_optimizer_name_is_named(tmp_path, capsys):
    config = write_config(tmp_path, "adversarial", {"name": "default"})
    data = yaml.safe_load(config.read_text())
    data["training"]["optimizers"]["critic"] = {"learning_rate": 0.1}
    config.write_text(yaml.safe_dump(data))
    assert cli.main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "training.optimizers.critic" in err and "['generator', 'discriminator']" in err
    assert len(err.strip().splitlines()) == 1


def run_subprocess(args, logical_cpus):
    env = dict(os.environ, TFGEN_TEST_LOGICAL_CPUS=str(logical_cpus))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "tfgen_main.py"), *args], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


# Under -m slow (39 s by default otherwise): the default run trains mirrored in
# tests/training/test_trainer.py (a flow) and this file's default-strategy test trains
# every toy.
@pytest.mark.slow
@pytest.mark.parametrize("toy", sorted(TOYS))
def test_mirrored_strategy_on_two_devices_trains_resumes_and_exports(tmp_path, toy):
    config = write_config(tmp_path, toy, {"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})
    run_subprocess(["train", str(config), "--epochs", "1", "--no-export"], logical_cpus=2)
    metrics = check_run(tmp_path, toy, epochs=1)
    assert metrics["num_replicas"] == 2
    run_subprocess(["train", str(config), "--resume", "--epochs", "2"], logical_cpus=2)
    assert check_run(tmp_path, toy, epochs=2)["initial_epoch"] == 1
    check_export(tmp_path, toy, version=1)
