"""The exported signatures of every zoo flow behave like the model (docs/architecture.md,
"The SavedModel contract")."""

import re

import numpy as np
import pytest
from export_fixtures import flow_params

from tfgen.backend import tf
from tfgen.export.standalone import read_signature_defs, read_warmup

pytestmark = pytest.mark.parametrize("name", flow_params())

ROWS = 4


def _call(loaded, signature, **inputs):
    outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def _sample_inputs(model, seeds, temperature=1.0):
    inputs = {"seed": np.asarray(seeds, np.int64), "temperature": np.full([len(seeds)], temperature, np.float32)}
    if model.data_spec.conditional:
        inputs["condition"] = (inputs["seed"] % model.data_spec.num_classes).astype(np.int32)
    return inputs


def test_signature_names_dtypes_and_batching(exports, name):
    model = exports.model(name)
    _, signature_defs = read_signature_defs(exports.path(name))
    event = list(model.data_spec.event_shape)
    condition = {"condition": (tf.int32, [-1])} if model.data_spec.conditional else {}
    # sample's log_prob comes with exact likelihoods only (not with dequantization bounds).
    sample_log_prob = {"log_prob": (tf.float32, [-1])} if model.log_prob_kind == "exact" else {}
    expected = {
        "sample": ({"seed": (tf.int64, [-1]), "temperature": (tf.float32, [-1]), **condition},
                   {"samples": (tf.float32, [-1, *event]), **sample_log_prob}),
        "log_prob": ({"x": (tf.float32, [-1, *event]), **condition},
                     {"log_prob": (tf.float32, [-1]), "bits_per_dim": (tf.float32, [-1])}),
        "encode": ({"x": (tf.float32, [-1, *event]), **condition}, {"z": (tf.float32, [-1, *event])}),
        "decode": ({"z": (tf.float32, [-1, *event]), **condition}, {"x": (tf.float32, [-1, *event])}),
        "reconstruct": ({"x": (tf.float32, [-1, *event]), **condition}, {"x": (tf.float32, [-1, *event])}),
        "describe": ({"rows": (tf.int64, [-1])},
                     {"kind": (tf.string, [-1]), "event_shape": (tf.int64, [-1, len(event)]),
                      "levels": (tf.int64, [-1]), "num_classes": (tf.int64, [-1]),
                      "log_prob_kind": (tf.string, [-1]), "sample_rate": (tf.int64, [-1])}),
    }
    expected["serving_default"] = expected["sample"]
    if model.data_spec.conditional:  # the Bayes classifier's two signatures
        classes = model.data_spec.num_classes
        expected["classify"] = ({"inputs": (tf.string, [-1])},
                                {"classes": (tf.string, [-1, classes]), "scores": (tf.float32, [-1, classes])})
        assert signature_defs["classify"].method_name == "tensorflow/serving/classify"

    def described(infos):
        return {k: (tf.as_dtype(v.dtype), [d.size for d in v.tensor_shape.dim]) for k, v in infos.items()}

    actual = {k: (described(v.inputs), described(v.outputs))
              for k, v in signature_defs.items() if not k.startswith("__")}
    assert actual == expected


def test_describe_answers_what_the_model_is_one_row_per_row(exports, name):
    model, loaded = exports.model(name), exports.loaded(name)
    spec = model.data_spec
    described = _call(loaded, "describe", rows=np.array([5, 0, 7], np.int64))
    assert {k: v.tolist() for k, v in described.items()} == {
        "kind": [spec.kind.encode()] * 3, "event_shape": [list(spec.event_shape)] * 3,
        "levels": [spec.levels or 0] * 3, "num_classes": [spec.num_classes or 0] * 3,
        "log_prob_kind": [str(model.log_prob_kind).encode()] * 3, "sample_rate": [0] * 3}


def test_sample_calls_the_decode_and_log_prob_functions_instead_of_copying_them(exports, name):
    """Each computation is traced once: the sample function's graph holds calls of the
    decode (and, for exact likelihoods, log_prob) signature functions and no network."""
    meta_graph, _ = read_signature_defs(exports.path(name))
    functions = {f.signature.name: f for f in meta_graph.graph_def.library.function}

    def called(function):  # "__inference_log_prob_123" -> "log_prob"
        return {re.sub(r"^__inference_(.*)_[0-9]+$", r"\1", node.attr["f"].func.name)
                for node in function.node_def if node.op in ("PartitionedCall", "StatefulPartitionedCall")}

    [sample] = [f for n, f in functions.items() if n.startswith("__inference_sample_")]
    expected = {"decode", "log_prob"} if exports.model(name).log_prob_kind == "exact" else {"decode"}
    assert called(sample) == expected
    weights_read_by_sample = sum(node.op == "ReadVariableOp" for node in sample.node_def)
    assert weights_read_by_sample == 0


def test_temperature_defaults_to_one(exports, name):
    """SignatureDef.defaults holds [1.0]; the restored function uses it when omitted."""
    model, loaded = exports.model(name), exports.loaded(name)
    _, signature_defs = read_signature_defs(exports.path(name))
    default = tf.make_ndarray(signature_defs["sample"].defaults["temperature"])
    np.testing.assert_array_equal(default, [1.0])
    inputs = _sample_inputs(model, [3, 4, 5])
    explicit = _call(loaded, "sample", **inputs)
    del inputs["temperature"]
    implicit = loaded.sample(**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_array_equal(implicit["samples"].numpy(), explicit["samples"])


def test_exported_outputs_equal_the_model(exports, name):
    model, loaded = exports.model(name), exports.loaded(name)
    inputs = _sample_inputs(model, range(ROWS), temperature=0.8)
    condition = inputs.get("condition")
    exported = _call(loaded, "sample", **inputs)
    x = model.sample(inputs["seed"], inputs["temperature"], condition).numpy()
    np.testing.assert_allclose(exported["samples"], x, rtol=1e-4, atol=1e-4)
    if model.log_prob_kind == "exact":
        np.testing.assert_allclose(exported["log_prob"], model.log_prob(x, condition).numpy(), rtol=1e-4, atol=1e-3)
    common = {} if condition is None else {"condition": condition}
    log_prob = _call(loaded, "log_prob", x=x, **common)
    np.testing.assert_allclose(log_prob["log_prob"], model.log_prob(x, condition).numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(log_prob["bits_per_dim"],
                               -log_prob["log_prob"] / (model.data_spec.num_dims * np.log(2.0)), rtol=1e-5)
    z = _call(loaded, "encode", x=x, **common)["z"]
    np.testing.assert_allclose(z, model.encode(x, condition).numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_call(loaded, "decode", z=z, **common)["x"], x, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_call(loaded, "reconstruct", x=x, **common)["x"], x, rtol=1e-4, atol=1e-4)


def test_samples_round_trip_to_finite_log_prob(exports, name):
    model, loaded = exports.model(name), exports.loaded(name)
    inputs = _sample_inputs(model, range(100, 100 + ROWS))
    samples = _call(loaded, "sample", **inputs)
    common = {k: v for k, v in inputs.items() if k == "condition"}
    log_prob = _call(loaded, "log_prob", x=samples["samples"], **common)["log_prob"]
    assert np.all(np.isfinite(log_prob))
    if model.log_prob_kind == "exact":
        np.testing.assert_allclose(samples["log_prob"], log_prob, rtol=1e-5, atol=1e-4)
    else:
        assert "log_prob" not in samples  # a bound is no free by-product of sampling


def test_seeds_key_samples_row_by_row(exports, name):
    """Same seed, same sample; other seeds, other samples; a row ignores its batch."""
    model, loaded = exports.model(name), exports.loaded(name)
    batch = _call(loaded, "sample", **_sample_inputs(model, [10, 11, 12, 13]))["samples"]
    again = _call(loaded, "sample", **_sample_inputs(model, [10, 11, 12, 13]))["samples"]
    np.testing.assert_array_equal(batch, again)
    alone = _call(loaded, "sample", **_sample_inputs(model, [12]))["samples"]
    np.testing.assert_allclose(alone[0], batch[2], rtol=1e-5, atol=1e-5)
    flat = batch.reshape(len(batch), -1)
    assert all(not np.array_equal(flat[i], flat[j]) for i in range(4) for j in range(i))


def test_warmup_requests_replay_through_the_loaded_model(exports, name):
    model, loaded = exports.model(name), exports.loaded(name)
    requests = read_warmup(exports.path(name))
    bayes = {"classify"} if model.data_spec.conditional else set()
    assert {signature for signature, _ in requests} == {"sample", "log_prob", "encode", "decode", "reconstruct",
                                                      "describe", *bayes}
    assert [len(inputs["seed"]) for signature, inputs in requests if signature == "sample"] == [1]
    for signature, inputs in requests:
        # The restored attribute functions accept omitted inputs that have defaults.
        outputs = getattr(loaded, signature)(**{k: tf.constant(v) for k, v in inputs.items()})
        rows = len(next(iter(inputs.values())))
        assert all(v.shape[0] == rows for v in outputs.values())
        assert all(np.all(np.isfinite(v.numpy())) for v in outputs.values() if v.dtype.is_floating)
    # The inputs are the model's own: log_prob gets the samples of the sample request.
    first = dict(requests)  # one single-row request per signature
    condition = first["sample"].get("condition")
    x = model.sample(first["sample"]["seed"], 1.0, condition).numpy()
    np.testing.assert_allclose(first["log_prob"]["x"], x, rtol=1e-5, atol=1e-5)


def test_classify_is_bayes_rule_over_log_prob(exports, name):
    """classify's scores from Examples are p(y | x) from the log_prob signature and the
    uniform prior (no training data recorded); unconditional models have no classify."""
    from tfgen.scoring.classify import bayes

    model, loaded = exports.model(name), exports.loaded(name)
    if not model.data_spec.conditional:
        assert "classify" not in loaded.signatures
        return
    classes = model.data_spec.num_classes
    x = _call(loaded, "sample", **_sample_inputs(model, [3, 4, 5]))["samples"]
    conditional = np.stack([_call(loaded, "log_prob", x=x, condition=np.full([3], c, np.int32))["log_prob"]
                            for c in range(classes)], axis=1)
    posterior, _ = bayes(conditional, [1 / classes] * classes)
    examples = []
    for row in x:
        example = tf.train.Example()
        example.features.feature["x"].float_list.value.extend(row.reshape(-1))
        examples.append(example.SerializeToString())
    classified = _call(loaded, "classify", inputs=np.array(examples, object))
    np.testing.assert_allclose(classified["scores"], np.exp(posterior), rtol=1e-5, atol=1e-6)
    assert classified["classes"].tolist() == [[str(c).encode() for c in range(classes)]] * 3
