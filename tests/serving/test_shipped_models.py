"""Every shipped model under saved_models/, served over gRPC and REST: sample and
log_prob equal an in-process call of the same signature; metadata and status answer.

Skipped while saved_models/ is empty (TFGEN_SERVING_MODELS=DIR points it elsewhere).
Inputs are built from each SignatureDef, so the test needs nothing from tfgen.models."""

import os

import grpc
import numpy as np
import pytest
import tensorflow as tf

from reference.record_shipped_reference import TOLERANCE
from serving_helpers import SERVED_WHEN_SLOW, SHIPPED_MODELS, Rest
from tfgen.serving import Client

MODELS = SHIPPED_MODELS


def sample_inputs(signature_def, rows=3):
    inputs = {"seed": np.arange(rows, dtype=np.int64)}
    if "condition" in signature_def.inputs:
        inputs["condition"] = np.arange(rows, dtype=np.int32) % 2
    if "steps" in signature_def.inputs:  # iterative samplers: a short run answers the same question
        inputs["steps"] = np.full([rows], 2, np.int32)
    return inputs


def call(loaded, signature, inputs, defaults):
    fn = loaded.signatures[signature]
    feeds = {k: tf.constant(v) for k, v in inputs.items()}
    for alias, value in defaults.items():
        feeds.setdefault(alias, tf.constant(np.broadcast_to(value, (len(inputs["seed"]),)).copy()))
    return {k: v.numpy() for k, v in fn(**feeds).items()}


@pytest.mark.skipif(not MODELS, reason="no shipped models under saved_models/ yet")
@pytest.mark.parametrize("model", [pytest.param(m.name, marks=pytest.mark.slow) if m.name in SERVED_WHEN_SLOW
                                   else m.name for m in MODELS])
def test_shipped_model_over_grpc_and_rest(model, request):
    shipped_server = request.getfixturevalue("slow_shipped_server" if model in SERVED_WHEN_SLOW else "shipped_server")
    servable = shipped_server.server.manager.servable(model)
    sample_sig = servable.signatures["sample"]
    inputs = sample_inputs(sample_sig.signature_def)
    loaded = tf.saved_model.load(servable.path)
    want = call(loaded, "sample", inputs, sample_sig.defaults)
    with Client(shipped_server.grpc_address) as c:
        got = c.predict(model, inputs, "sample")
        np.testing.assert_allclose(got["samples"], want["samples"], rtol=1e-5, atol=1e-6)
        assert c.status(model)[-1]["state"] == "AVAILABLE"
        if "log_prob" not in servable.signatures:  # no likelihood (GANs): TF Serving's error
            with pytest.raises(grpc.RpcError) as error:
                c.predict(model, {"x": got["samples"]}, "log_prob")
            assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert 'signature key "log_prob" not found' in error.value.details()
        else:
            lp_inputs = {"x": got["samples"]}
            if "condition" in servable.signatures["log_prob"].inputs:
                lp_inputs["condition"] = inputs["condition"]
            scores = c.predict(model, lp_inputs, "log_prob")
            want_scores = {
                k: v.numpy() for k, v in loaded.signatures["log_prob"](
                    **{k: tf.constant(v) for k, v in lp_inputs.items()}).items()}
            np.testing.assert_allclose(scores["log_prob"], want_scores["log_prob"], rtol=1e-5, atol=1e-5)
            assert "log_prob" in c.metadata(model)["signature_def"]
        assert "sample" in c.metadata(model)["signature_def"]
    rest = Rest(shipped_server.rest_url)
    status, body = rest.post(f"/v1/models/{model}:predict", {
        "signature_name": "sample",
        "inputs": {k: v.tolist() for k, v in inputs.items()}})
    assert status == 200, body
    outputs = body["outputs"]
    samples = outputs["samples"] if isinstance(outputs, dict) else outputs
    np.testing.assert_allclose(np.array(samples, np.float32), want["samples"], rtol=1e-5, atol=1e-6)
    assert rest.get(f"/v1/models/{model}/metadata")[0] == 200


REFERENCE = os.path.join(os.path.dirname(__file__), "..", "reference", "shipped_reference.npz")
# The models shipped when the reference was recorded (later ones have their own checks).
RECORDED = sorted({key.split("/")[0] for key in np.load(REFERENCE).files} & {m.name for m in MODELS})


@pytest.mark.skipif(not RECORDED, reason="no recorded shipped models under saved_models/")
@pytest.mark.parametrize("model", RECORDED)
def test_shipped_model_answers_as_recorded_before_the_re_export(model, shipped_server):
    """Over gRPC and REST, every signature answers what the exports answered before their
    graphs were re-traced (tests/reference/record_shipped_reference.py)."""
    reference = np.load(REFERENCE)
    given = {k.split("/")[-1]: reference[k] for k in reference.files if k.startswith(f"{model}/input/")}
    condition = {"condition": given["condition"]} if "condition" in given else {}
    requests = {
        "sample": {"seed": given["seed"], "temperature": given["temperature"], **condition},
        "log_prob": {"x": given["x"], **condition},
        "encode": {"x": given["x"], **condition},
        "decode": {"z": reference[f"{model}/encode/z"], **condition},
    }
    rest = Rest(shipped_server.rest_url)
    with Client(shipped_server.grpc_address) as c:
        for signature, inputs in requests.items():
            got = c.predict(model, inputs, signature)
            status, body = rest.post(f"/v1/models/{model}:predict", {
                "signature_name": signature, "inputs": {k: v.tolist() for k, v in inputs.items()}})
            assert status == 200, body
            # TF Serving's columnar format: a lone output is the value itself.
            rest_outputs = body["outputs"] if isinstance(body["outputs"], dict) else {None: body["outputs"]}
            for key in reference.files:
                if key.startswith(f"{model}/{signature}/"):
                    output = key.split("/")[-1]
                    want = reference[key]
                    np.testing.assert_allclose(got[output], want, **TOLERANCE, err_msg=f"gRPC {key}")
                    np.testing.assert_allclose(np.asarray(rest_outputs.get(output, rest_outputs.get(None)), np.float32), want,
                                               **TOLERANCE, err_msg=f"REST {key}")


NAMES = [m.name for m in MODELS]


@pytest.mark.skipif("digits_conditional_glow" not in NAMES or "two_moons_nsf" not in NAMES,
                    reason="needs the shipped conditional and 2-D models")
def test_out_of_range_inputs_are_invalid_argument_naming_the_range(shipped_server):
    """A condition outside the classes gave TensorFlow graph text; x = 3e38 gave NaN
    log_prob with OK. Both are refused before the graph runs, naming input and range."""
    import grpc

    with Client(shipped_server.grpc_address) as c:
        for condition in (-1, 10, 2**31 - 1):
            with pytest.raises(grpc.RpcError) as e:
                c.sample("digits_conditional_glow", [0], condition=condition)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert e.value.details() == (
                "input 'condition' of signature 'sample' must be in [0, 9] (the model's 10 "
                f"classes); got {condition} at index [0]")
        with pytest.raises(grpc.RpcError) as e:
            c.log_prob("two_moons_nsf", np.array([[3e38, 0.0]], np.float32))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "input 'x' of signature 'log_prob' must be in [-1e+18, 1e+18]" in e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            c.log_prob("digits_realnvp", np.full([1, 8, 8, 1], 17.0, np.float32))
        assert "must be in [0, 16] (the data's 17 quantization levels)" in e.value.details()
        # In range still answers.
        assert np.isfinite(c.log_prob("two_moons_nsf", np.array([[1e6, 0.0]], np.float32))["log_prob"]).all()
