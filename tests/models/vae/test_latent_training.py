"""pPCA and the VAE through `tfgen train` / `tfgen export`, like a user runs them: the
closed-form start, a mirrored strategy on 2 logical CPUs with resume, and the exported
K of the importance-weighted log_prob."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tfgen import cli
from tfgen.backend import tf

TFGEN_MAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "training", "tfgen_main.py")


def write_config(tmp_path, model, strategy=None, steps=3, name="config.yaml"):
    data = {
        "model": model,
        "data": {"name": "digits", "seed": 0},
        "training": {"batch_size": 32, "epochs": 1, "steps_per_epoch": steps, "learning_rate": 1e-3,
                     "verbose": 0, "eval_noise_draws": 1},
        "strategy": strategy or {"name": "default"},
        "checkpoint": {"keep": 2},
        "tensorboard": {"enabled": False},
        "export": {"enabled": False},
        "run_dir": str(tmp_path / name.replace(".yaml", "")),
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def held_out(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())["held_out"]


def test_ppca_starts_from_the_closed_form_fit(tmp_path):
    closed = write_config(tmp_path, {"class_name": "PPCA", "config": {"latent_dim": 4}}, name="closed.yaml")
    random = write_config(tmp_path, {"class_name": "PPCA", "config": {"latent_dim": 4, "initialization": "random"}},
                          name="random.yaml")
    assert cli.main(["train", str(closed)]) == 0
    assert cli.main(["train", str(random)]) == 0
    # Three small gradient steps from a random start stay far from the optimum.
    assert held_out(tmp_path / "closed")["bits_per_dim"] < held_out(tmp_path / "random")["bits_per_dim"] - 1.0


def run_subprocess(args, logical_cpus=2):
    env = dict(os.environ, TFGEN_TEST_LOGICAL_CPUS=str(logical_cpus))
    proc = subprocess.run([sys.executable, TFGEN_MAIN, *args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]


TINY_VAE = {"class_name": "VAE", "config": {"latent_dim": 4, "hidden_units": [32], "prior": "vamp",
                                             "num_pseudo_inputs": 5, "kl_warmup_steps": 4,
                                             "likelihood": "discretized_logistic_mixture",
                                             "num_mixture_components": 2, "num_importance_samples": 8}}


def conditional_vae_config(tmp_path, strategy=None):
    config = write_config(tmp_path, TINY_VAE, strategy)
    data = yaml.safe_load(config.read_text())
    data["data"]["conditional"] = True
    config.write_text(yaml.safe_dump(data))
    return config


def check_run(run_dir, epochs):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == epochs
    figures = metrics["held_out"]
    assert figures["num_importance_samples"] == 8
    assert figures["bits_per_dim"] <= figures["elbo_bits_per_dim"]
    assert {"loss", "reconstruction", "kl", "bits_per_dim"} <= set(metrics["history"])
    return metrics


@pytest.mark.slow
def test_conditional_vae_trains_mirrored_and_resumes(tmp_path):
    config = conditional_vae_config(tmp_path, {"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})
    run_subprocess(["train", str(config), "--no-export"])
    run_subprocess(["train", str(config), "--resume", "--epochs", "2", "--no-export"])
    metrics = check_run(tmp_path / "config", epochs=2)
    assert metrics["num_replicas"] == 2 and metrics["initial_epoch"] == 1


@pytest.mark.slow  # 14 s; tests/training/test_any_family.py trains the latent toy through the CLI by default
def test_conditional_vae_exports_the_k_it_is_given(tmp_path, capsys):
    config = conditional_vae_config(tmp_path)
    assert cli.main(["train", str(config), "--no-export"]) == 0
    run_dir = tmp_path / "config"
    check_run(run_dir, epochs=1)

    out = tmp_path / "export"
    assert cli.main(["export", str(run_dir), "--out", str(out), "--log-prob-samples", "32"]) == 0
    doc = json.loads((out / "1" / "assets.extra" / "tfgen.json").read_text())
    assert doc["log_prob_kind"] == "importance_weighted_bound" and doc["log_prob_samples"] == 32
    assert doc["config"]["num_importance_samples"] == 32
    loaded = tf.saved_model.load(str(out / "1"))
    condition = tf.range(4, dtype=tf.int32)
    samples = loaded.signatures["sample"](seed=tf.range(4, dtype=tf.int64), condition=condition,
                                          temperature=tf.ones([4]))["samples"]
    scored = loaded.signatures["log_prob"](x=samples, condition=condition)
    assert np.all(scored["elbo"].numpy() <= scored["log_prob"].numpy() + 1e-4)
    assert np.all(np.isfinite(scored["log_prob"].numpy()))

    capsys.readouterr()
    for bad in ("0", "100000"):
        assert cli.main(["export", str(run_dir), "--out", str(out), "--log-prob-samples", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert "--log-prob-samples must be an integer in 1 .. 4096" in err and len(err.splitlines()) == 1
    assert sorted(os.listdir(out)) == ["1"]
