"""`tfgen evaluate` and `tfgen train-classifier`: figures equal to a direct computation, the
same locally and served, the shipped digits classifier, and one-line errors."""

import json
import os

import numpy as np
import pytest
import zoo

from tfgen.cli import main
from tfgen.data.builtin import eight_gaussians_modes
from tfgen.data.datasets import load_dataset
from tfgen.metrics import sample_quality
from tfgen.metrics.features import load_feature_network

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TOY_DATA = {"name": "eight_gaussians", "num_samples": 3000}


@pytest.fixture(scope="module")
def toy_export(tmp_path_factory):
    """The adversarial toy (a GAN-like export: sample and decode, no likelihood), recorded
    as trained on eight_gaussians."""
    from tfgen.export.saved_model import export_model

    base = str(tmp_path_factory.mktemp("evaluate") / "toy_gan")
    return export_model(zoo.cached("toy_adversarial"), base, version=1,
                        metadata={"training_data": {"data": TOY_DATA}})


def write_decode_only(path):
    """A tfgen-shaped export with a decode signature only: nothing to sample."""
    import tensorflow as tf

    class DecodeOnly(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="z")])
        def decode(self, z):
            return {"x": 2.0 * z}

    module = DecodeOnly()
    tf.saved_model.save(module, path, signatures={"decode": module.decode})
    os.makedirs(os.path.join(path, "assets.extra"))
    with open(os.path.join(path, "assets.extra", "tfgen.json"), "w") as f:
        json.dump({"data_spec": {"event_shape": [2], "kind": "vector"}}, f)
    return path


def run(capsys, *argv):
    code = main(["evaluate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_equals_the_metrics_on_the_signature_s_samples(toy_export, tmp_path, capsys):
    import tensorflow as tf

    code, out, _ = run(capsys, "--model", toy_export, "-n", "250", "--seed", "5", "--json", str(tmp_path / "f.json"))
    assert code == 0
    assert "Frechet distance" in out and "modes covered" in out and "raw features, 2 dims" in out
    figures = json.loads((tmp_path / "f.json").read_text())
    # Independently: the signature's samples for seeds 5 .. 254, the test split, the metrics.
    loaded = tf.saved_model.load(toy_export)
    samples = loaded.signatures["sample"](seed=tf.range(5, 255, dtype=tf.int64),
                                          temperature=tf.ones([250]))["samples"].numpy()
    test = load_dataset(TOY_DATA).splits["test"].x
    assert figures["num_generated"] == 250 and figures["num_real"] == len(test) == 300
    assert figures["frechet_distance"] == pytest.approx(
        sample_quality.frechet_distance(test, samples)["frechet_distance"], rel=1e-6)
    kid = sample_quality.kernel_inception_distance(test, samples, num_subsets=10, seed=5)
    assert figures["kid"] == pytest.approx(kid["kid"], rel=1e-5)
    assert figures["kid_stderr"] == pytest.approx(kid["kid_stderr"], rel=1e-5)
    pr = sample_quality.precision_recall(test, samples, k=3)
    assert (figures["precision"], figures["recall"]) == pytest.approx((pr["precision"], pr["recall"]))
    coverage = sample_quality.mode_coverage(samples, *eight_gaussians_modes())
    assert figures["modes_covered"] == coverage["modes_covered"]
    assert figures["fraction_near_mode"] == pytest.approx(coverage["fraction_near_mode"])
    assert figures["dataset"] == TOY_DATA and figures["split"] == "test" and figures["seed"] == 5


def test_a_served_model_gives_the_same_figures(toy_export, capsys):
    from tfgen.serving.model_manager import ModelConfig
    from tfgen.serving.server import ServerOptions, start_in_thread

    server = start_in_thread(ServerOptions(models=[ModelConfig(name="toy_gan", base_path=os.path.dirname(toy_export))],
                                           port=0, rest_api_port=None))
    try:
        code, out, _ = run(capsys, "--server", server.grpc_address, "--model-name", "toy_gan",
                           "--dataset", "eight_gaussians", "-n", "200", "--json")
    finally:
        server.stop()
    assert code == 0
    served = json.loads(out)
    code, out, _ = run(capsys, "--model", toy_export, "--dataset", "eight_gaussians", "-n", "200", "--json")
    local = json.loads(out)
    # Only --dataset's name reaches the server run: the default eight_gaussians (2000 test rows).
    assert served["num_real"] == 2000 and served["dataset"] == {"name": "eight_gaussians"}
    assert local["dataset"] == TOY_DATA  # locally the recorded options of that dataset
    code, out, _ = run(capsys, "--model", toy_export, "--dataset", "two_moons", "-n", "200", "--json")
    assert json.loads(out)["dataset"] == {"name": "two_moons"} and "modes_covered" not in json.loads(out)
    for key in ("frechet_distance", "precision", "modes_covered", "fraction_near_mode"):
        assert key in served


def test_a_conditional_digits_model_gets_class_accuracy(capsys):
    code, out, _ = run(capsys, "--model", os.path.join(ROOT, "saved_models", "digits_conditional_vae"),
                       "-n", "60", "--temperature", "0.7", "--json")
    assert code == 0
    figures = json.loads(out)
    assert figures["feature_network"] == "digits_classifier" and figures["feature_dim"] == 64
    # The README's logistic regression gave 98.6% at temperature 0.7.
    assert figures["class_accuracy"] > 0.85
    assert figures["dataset"]["name"] == "digits" and figures["num_real"] == 269
    assert figures["reference_rows_in_feature_training"] == 0  # disjoint splits, no duplicate images
    # Scored against the classifier's own training rows, the output says so.
    code, out, _ = run(capsys, "--model", os.path.join(ROOT, "saved_models", "digits_vae"), "--split", "train",
                       "-n", "20")
    assert code == 0 and "note: 1258 reference rows also occur in the feature network's training data" in out
    assert "fewer examples than the 64 feature dimensions" in out


def test_the_shipped_digits_classifier_scores_what_its_config_records():
    net = load_feature_network("digits_classifier")
    dataset = load_dataset({"name": "digits"})
    for name in ("validation", "test"):
        split = dataset.splits[name]
        accuracy = float(np.mean(net.classify(split.x, dataset.spec) == split.y))
        assert accuracy == pytest.approx(net.config["accuracy"][name]["accuracy"], abs=1e-9)
        assert accuracy > 0.97
    assert net.training_data == {"name": "digits", "seed": 0}
    features = net.features(dataset.splits["train"].x, dataset.spec)
    # Standardized by the train split's statistics.
    assert features.shape == (1258, 64) and np.abs(features.mean(0)).max() < 1e-4


@pytest.mark.parametrize("argv, message", [
    (["--model", "{tmp}"], "holds no SavedModel"),
    (["--model", "{decode_only}"], "has no sample signature"),
    (["--model", "{toy}", "--feature-network", "resnet"], "unknown feature network 'resnet'"),
    (["--model", "{toy}", "--feature-network", "inception_v3"], "needs its weights file"),
    (["--model", "{toy}", "--feature-network", "digits_classifier"], "takes [8, 8, 1] images with 17 levels"),
    (["--model", "{toy}", "-n", "1"], "-n must be >= 2"),
    (["--model", "{toy}", "--split", "train", "--dataset", "digits"], "reference examples have shape [8, 8, 1]"),
    (["--server", "127.0.0.1:1", "--model", "toy"], "name the reference dataset with --dataset"),
])
def test_bad_input_is_one_line(argv, message, toy_export, tmp_path, capsys):
    decode_only = write_decode_only(str(tmp_path / "decode_only" / "1"))
    names = {"tmp": str(tmp_path), "decode_only": decode_only, "toy": toy_export}
    code, out, err = run(capsys, *[a.format(**names) for a in argv])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_train_classifier_writes_a_feature_network(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("data: {name: digits}\nnetwork: {conv_filters: [4], feature_dim: 8}\n"
                      "training: {epochs: 1, batch_size: 128}\n")
    out_dir = tmp_path / "tiny"
    assert main(["train-classifier", str(config), "--out", str(out_dir)]) == 0
    net = load_feature_network(str(out_dir))
    assert net.dimension == 8 and set(net.config["accuracy"]) == {"train", "validation", "test"}
    dataset = load_dataset({"name": "digits"})
    assert net.features(dataset.splits["test"].x[:5], dataset.spec).shape == (5, 8)
    capsys.readouterr()
    assert main(["train-classifier", str(config), "--out", str(out_dir)]) == 2
    assert "already exists" in capsys.readouterr().err
    config.write_text("data: {name: digits}\nnetwork: {conv_filter: [4]}\n")
    assert main(["train-classifier", str(config), "--out", str(tmp_path / "other")]) == 2
    assert "unknown key 'network.conv_filter'" in capsys.readouterr().err
