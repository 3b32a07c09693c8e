"""The shipped models in saved_models/: reproducible from tf_configs/, listed in
serving/models.config, small, conforming, answering as they did when recorded, and as
good as their metadata says."""

import glob
import os

import numpy as np
import pytest
import yaml
import zoo

from tfgen.backend import tf
from tfgen.data.datasets import load_dataset
from tfgen.export.conformance import check_export
from tfgen.metrics.bits import bits_per_dim
from tfgen.export.reader import list_versions, read_metadata
from tfgen.metrics.baselines import gmm_baseline
from tfgen.serving import config as serving_config

ROOT = os.path.join(os.path.dirname(__file__), "..")
REFERENCE = os.path.join(os.path.dirname(__file__), "reference", "shipped_reference.npz")
#: saved_model.pb bytes of the shipped exports at fba1226, before each computation was
#: traced once and the graphs compacted (tools/reexport_shipped.py; docs/benchmarks.md).
BYTES_BEFORE = {"digits_realnvp": 4007936, "digits_conditional_glow": 5378515, "two_moons_nsf": 4601662}
SHIPPED = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "saved_models", "*")) if os.path.isdir(p))


def newest(name):
    base = os.path.join(ROOT, "saved_models", name)
    return os.path.join(base, str(max(list_versions(base))))


def test_the_issue_s_three_shipped_models_exist():
    assert {"digits_realnvp", "digits_conditional_glow", "two_moons_nsf"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_model_comes_from_its_training_config(name):
    with open(os.path.join(ROOT, "tf_configs", f"{name}.yaml")) as f:
        config = yaml.safe_load(f)
    meta = read_metadata(newest(name))
    assert config["export"]["base_path"] == f"saved_models/{name}"
    assert meta["class_name"] == config["model"]["class_name"]
    for key, value in config["model"]["config"].items():
        assert meta["config"][key] == value, key
    assert meta["training_data"]["data"]["name"] == config["data"]["name"]


def test_serving_models_config_lists_exactly_the_shipped_models():
    models = serving_config.read_model_config_file(os.path.join(ROOT, "serving", "models.config"))
    assert sorted(m.name for m in models) == SHIPPED
    assert all(m.base_path == f"saved_models/{m.name}" for m in models)


def test_shipped_models_fit_in_30_mb():
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(ROOT, "saved_models", "**"), recursive=True) if os.path.isfile(p))
    assert total < 30 * 2**20, f"saved_models/ is {total / 2**20:.1f} MB"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_graphs_are_at_most_1_mb_and_a_quarter_of_their_old_size(name):
    size = os.path.getsize(os.path.join(newest(name), "saved_model.pb"))
    assert size <= 1_000_000 and size <= BYTES_BEFORE.get(name, 4 * size) / 4, (size, BYTES_BEFORE.get(name))


@pytest.mark.parametrize("name", sorted(BYTES_BEFORE))  # the models recorded before the re-export
def test_shipped_models_answer_as_recorded_before_the_re_export(name):
    """Every output of every signature on the recorded inputs, to float32 rounding
    (across CPUs)."""
    import sys

    sys.path.insert(0, os.path.dirname(REFERENCE))
    from record_shipped_reference import TOLERANCE, answers

    reference = np.load(REFERENCE)
    prefix = f"{name}/"
    inputs = {k[len(prefix + "input/"):]: reference[k] for k in reference.files if k.startswith(prefix + "input/")}
    expected = {k[len(prefix):]: reference[k] for k in reference.files
                if k.startswith(prefix) and not k.startswith(prefix + "input/")}
    got = answers(newest(name), inputs)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, **TOLERANCE, err_msg=f"{name} {key}")


# Export conformance takes 14-45 s an export on this 2-core machine. By default it runs
# on a zoo representative per class in tests/models/test_contract.py or, for the classes
# whose representative runs under -m slow there, on their shipped exports here, except
# SLOW_CLASSES: Glow and the spline flow (flows like the shipped RealNVP: 26-32 and 22 s),
# the pPCA and the VAE (latent models, 15-25 s each; their exports are served and
# compared by default in tests/serving and tests/test_shipped_latent_models.py) and the
# PixelCNN and the WaveNet (autoregressive models: their zoo representatives conform under
# -m slow too, for the time budget; both shipped ones are served and compared by default in
# tests/serving). Every other shipped export, the digits DDPM's included, is checked under
# -m slow.
SLOW_CLASSES = frozenset(["Glow", "NeuralSplineFlow", "PPCA", "VAE", "GatedPixelCNN", "WaveNet"])
DEFAULT_CONFORMANCE = {name for name in SHIPPED if read_metadata(newest(name))["class_name"]
                       not in zoo.DEFAULT_CONFORMING_CLASSES | SLOW_CLASSES}


@pytest.mark.parametrize("name", [n if n in DEFAULT_CONFORMANCE else pytest.param(n, marks=pytest.mark.slow)
                                  for n in SHIPPED])
def test_shipped_models_keep_the_savedmodel_contract(name):
    report = check_export(newest(name))
    assert report.ok, report.table()


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"name": "digits", "seed": 0})


@pytest.fixture(scope="module")
def best_baseline_bits_per_dim(digits):
    return gmm_baseline(digits)["test_bits_per_dim"]  # GMM beats KDE on digits (bench/baselines.py)


@pytest.mark.parametrize("name", ["digits_realnvp", "digits_conditional_glow"])
def test_shipped_digits_flows_beat_the_best_baseline(name, digits, best_baseline_bits_per_dim):
    path = newest(name)
    meta = read_metadata(path)
    reported = meta["metrics"]["bits_per_dim"]
    assert meta["metrics"]["split"] == "test"
    assert reported < best_baseline_bits_per_dim

    # Recomputed from the file itself: the exported log_prob on the test split. It is the
    # K-draw importance-weighted bound, tighter than the reported single-draw average,
    # so a little lower, never much higher.
    test = digits.splits["test"]
    inputs = {"x": tf.constant(test.x)}
    if meta["data_spec"]["num_classes"]:
        inputs["condition"] = tf.constant(test.y)
    log_prob = tf.saved_model.load(path).signatures["log_prob"](**inputs)["log_prob"].numpy()
    recomputed = float(np.mean(bits_per_dim(log_prob, digits.spec.num_dims)))
    assert recomputed < best_baseline_bits_per_dim
    assert meta["log_prob_kind"] == "dequantized_lower_bound"
    assert reported - 0.3 < recomputed < reported + 0.05, (recomputed, reported)


@pytest.fixture(scope="module")
def digit_classifier(digits):
    """A logistic regression on the training digits (96.3% on the real test digits)."""
    from sklearn.linear_model import LogisticRegression

    train = digits.splits["train"]
    return LogisticRegression(max_iter=2000).fit(train.x.reshape(len(train.x), -1), train.y)


# (model, temperature, least fraction of samples classified as the asked-for digit),
# each well below what was measured (README): glow 99.5%, PixelCNN 92.5%, VAE 98.6%.
# The conditional GAN: 99.5% measured at temperature 1; its target is 95%.
CONDITIONAL_DIGITS = [("digits_conditional_glow", 0.7, 0.9), ("digits_conditional_pixel_cnn", 1.0, 0.8),
                      ("digits_conditional_vae", 0.7, 0.95), ("digits_conditional_gan", 1.0, 0.95)]


@pytest.mark.parametrize("name, temperature, least", CONDITIONAL_DIGITS)
def test_conditional_digits_samples_look_like_their_class(name, temperature, least, digit_classifier):
    condition = np.repeat(np.arange(10, dtype=np.int32), 20)
    sample = tf.saved_model.load(newest(name)).signatures["sample"]
    samples = sample(
        seed=tf.range(len(condition), dtype=tf.int64),
        temperature=tf.fill([len(condition)], temperature),
        condition=tf.constant(condition),
    )["samples"].numpy()
    accuracy = float(np.mean(digit_classifier.predict(samples.reshape(len(samples), -1)) == condition))
    assert accuracy > least, f"only {accuracy:.0%} of {name}'s samples classified as their condition"


def test_the_eight_gaussians_wgan_gp_covers_every_mode():
    """8/8 modes get samples and at least 90% of samples lie within 3 sd of a mode."""
    from tfgen.data.builtin import eight_gaussians_modes
    from tfgen.metrics.sample_quality import mode_coverage

    rows = 10000
    samples = tf.saved_model.load(newest("eight_gaussians_wgan_gp")).signatures["sample"](
        seed=tf.range(rows, dtype=tf.int64), temperature=tf.ones([rows]))["samples"].numpy()
    modes, std = eight_gaussians_modes()
    coverage = mode_coverage(samples, modes, std)
    assert coverage["modes_covered"] == 8, coverage
    assert coverage["fraction_near_mode"] >= 0.9, coverage
