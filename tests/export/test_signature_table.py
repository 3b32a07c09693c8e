"""The signature table (tfgen.contract.SIGNATURES) decides each family's exports.

The pure part (which model has which signature and tensor) runs without TensorFlow;
the test models of tests/toy_models.py (an adversarial model without a likelihood, a
latent-variable model with a stochastic encoder) are exported and checked end to end.
"""

import numpy as np
import pytest
import toy_models

from tfgen.backend import tf
from tfgen.contract import SIGNATURES, Capabilities, LogProbKind, check_table, read_description, signature_plan
from tfgen.export.saved_model import export_model
from tfgen.export.standalone import read_warmup


def _io(plan):
    return {e["name"]: ([i["name"] for i in e["inputs"]], [o["name"] for o in e["outputs"]]) for e in plan}


def test_a_conditional_flow_on_discrete_images():
    capabilities = Capabilities((8, 8, 1), "image", levels=17, num_classes=10,
                                log_prob_kind=LogProbKind.DEQUANTIZED_LOWER_BOUND, has_latent=True,
                                latent_shape=(8, 8, 1))
    plan = signature_plan(capabilities)
    assert _io(plan) == {
        "sample": (["seed", "condition", "temperature"], ["samples"]),  # a bound: no free log_prob
        "log_prob": (["x", "condition"], ["log_prob", "bits_per_dim"]),
        "encode": (["x", "condition"], ["z"]),
        "decode": (["z", "condition"], ["x"]),
        "reconstruct": (["x", "condition"], ["x"]),
        "describe": (["rows"], ["kind", "event_shape", "levels", "num_classes", "log_prob_kind", "sample_rate"]),
        "classify": (["inputs"], ["classes", "scores"]),
    }
    classify = plan[-1]
    assert classify["inputs"][0]["example"] == ["examples", ("sample", "samples")]
    assert [o["shape"] for o in classify["outputs"]] == [[-1, 10], [-1, 10]]
    assert SIGNATURES["classify"].method == "tensorflow/serving/classify"
    plan = plan[:-1]
    sample = plan[0]
    assert [i["shape"] for i in sample["inputs"]] == [[-1], [-1], [-1]]
    assert [i["default"] for i in sample["inputs"]] == [None, None, 1.0]
    assert sample["inputs"][1]["example"] == ["classes", 10]
    assert sample["outputs"][0] == {"name": "samples", "dtype": "float32", "shape": [-1, 8, 8, 1]}
    describe = {o["name"]: o for o in plan[-1]["outputs"]}
    assert describe["event_shape"]["shape"] == [-1, 3]
    assert {k: o["value"] for k, o in describe.items()} == {
        "kind": "image", "event_shape": [8, 8, 1], "levels": 17, "num_classes": 10,
        "log_prob_kind": "dequantized_lower_bound", "sample_rate": 0}


def test_no_likelihood_no_latent_means_sample_and_describe_only():
    plan = signature_plan(Capabilities((2,), log_prob_kind="none"))
    assert _io(plan) == {"sample": (["seed", "temperature"], ["samples"]),
                         "describe": (["rows"], list(_io(plan)["describe"][1]))}


def test_a_stochastic_encoder_takes_a_seed_and_an_exact_likelihood_comes_with_samples():
    plan = _io(signature_plan(Capabilities((3,), has_latent=True, latent_shape=(1,), stochastic_encoder=True)))
    assert plan["encode"] == (["x", "seed"], ["z", "mean", "scale"])
    assert plan["reconstruct"] == (["x", "seed"], ["x"])
    assert plan["sample"] == (["seed", "temperature"], ["samples", "log_prob"])


def test_an_export_of_an_older_format_is_not_expected_to_have_what_came_later():
    older = _io(signature_plan(Capabilities((3,), has_latent=True, latent_shape=(1,), stochastic_encoder=True,
                                            format_version=2)))
    assert "reconstruct" not in older and older["encode"] == (["x", "seed"], ["z"])
    read = Capabilities.from_metadata({"data_spec": {"event_shape": [3], "kind": "vector"}, "log_prob_kind": "exact",
                                       "has_latent": True, "latent_shape": [3], "format_version": 2})
    assert "reconstruct" not in _io(signature_plan(read))


def test_a_first_ddpm_export_reads_as_its_sampler_s_inputs_with_their_defaults():
    """Those exports recorded `"diffusion_sampler": true` instead of `sample_inputs`."""
    doc = {"data_spec": {"event_shape": [8, 8, 1], "kind": "image", "levels": 17, "num_classes": 10},
           "log_prob_kind": "variational_bound", "has_latent": False, "format_version": 4,
           "diffusion_sampler": True, "sample_inputs": {}}
    entry = {e["name"]: e for e in signature_plan(Capabilities.from_metadata(doc))}["sample"]
    defaults = {i["name"]: i["default"] for i in entry["inputs"]}
    assert defaults == {"seed": None, "condition": None, "temperature": 1.0, "steps": 50, "eta": 0.0,
                        "guidance_scale": 1.0}


def test_an_audio_model_describes_its_sample_rate():
    plan = signature_plan(Capabilities((64, 1), "audio", sample_rate=8000))
    values = {o["name"]: o.get("value") for o in plan[-1]["outputs"]}
    assert values["kind"] == "audio" and values["sample_rate"] == 8000 and values["event_shape"] == [64, 1]


def test_read_description_takes_the_first_row():
    outputs = {"kind": np.array([b"vector"] * 2, object), "event_shape": np.array([[8], [8]]),
               "levels": np.array([0, 0]), "num_classes": np.array([0, 0]),
               "log_prob_kind": np.array([b"exact"] * 2, object), "sample_rate": np.array([0, 0])}
    assert read_description(outputs) == {"kind": "vector", "event_shape": (8,), "levels": 0, "num_classes": 0,
                                         "log_prob_kind": "exact", "sample_rate": 0}
    del outputs["levels"]
    with pytest.raises(ValueError, match="no output 'levels'"):
        read_description(outputs)


def test_the_table_check_refuses_an_example_read_before_it_is_returned():
    check_table(SIGNATURES.values())
    # decode's example z is what encode returns: listed before encode, it reads nothing.
    with pytest.raises(AssertionError, match="decode/z reads encode/z"):
        check_table([SIGNATURES["sample"], SIGNATURES["decode"], SIGNATURES["encode"]])


@pytest.fixture(scope="module")
def toy_exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("toys")
    spec = {"event_shape": [3], "kind": "vector"}
    models = {"adversarial": toy_models.ToyAdversarial(spec), "latent": toy_models.ToyLatentGaussian(spec)}
    return {name: (model, export_model(model, str(root / name))) for name, model in models.items()}


def test_a_model_without_likelihood_has_no_log_prob_signature(toy_exports):
    _, path = toy_exports["adversarial"]
    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures) == ["describe", "sample", "serving_default"]
    described = loaded.signatures["describe"](rows=tf.constant([0], tf.int64))
    assert described["log_prob_kind"].numpy()[0] == b"none"


def test_a_stochastic_encode_is_keyed_by_the_seed_row_by_row(toy_exports):
    model, path = toy_exports["latent"]
    encode = tf.saved_model.load(path).signatures["encode"]
    x = tf.constant(np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3))
    z = encode(x=x, seed=tf.constant([1, 2, 3], tf.int64))["z"].numpy()
    again = encode(x=x, seed=tf.constant([1, 2, 3], tf.int64))["z"].numpy()
    other = encode(x=x, seed=tf.constant([1, 5, 3], tf.int64))["z"].numpy()
    np.testing.assert_array_equal(z, again)
    np.testing.assert_array_equal(other[[0, 2]], z[[0, 2]])
    assert not np.array_equal(other[1], z[1])
    np.testing.assert_allclose(z, model.encode(x, seed=tf.constant([1, 2, 3], tf.int64)).numpy(), rtol=1e-5,
                               atol=1e-6)
    assert {signature for signature, inputs in read_warmup(path) if "seed" in inputs} == {
        "sample", "encode", "reconstruct"}


def test_a_stochastic_encode_returns_its_posterior_and_reconstruct_decodes_the_draw(toy_exports):
    model, path = toy_exports["latent"]
    loaded = tf.saved_model.load(path)
    x = tf.constant(np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3))
    seed = tf.constant([4, 5, 6], tf.int64)
    encoded = {k: v.numpy() for k, v in loaded.signatures["encode"](x=x, seed=seed).items()}
    mean, scale = model.posterior(x)
    np.testing.assert_allclose(encoded["mean"], mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encoded["scale"], scale.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(encoded["scale"] > 0) and not np.allclose(encoded["z"], encoded["mean"])
    reconstruction = loaded.signatures["reconstruct"](x=x, seed=seed)["x"].numpy()
    np.testing.assert_allclose(reconstruction, model.decode(encoded["z"]).numpy(), rtol=1e-5, atol=1e-6)
