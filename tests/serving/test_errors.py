"""TF Serving's status codes and messages, and malformed requests that leave the server
healthy. One test per row of the issue's table; each malformed request class is sent,
answered with its code, and followed by a health check and a good request."""

import base64

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
)

from tfgen.serving.tensors import ndarray_to_proto

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def predict(client, model="toy", signature="log_prob", inputs=None, version=None, label=None,
            output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    for k, v in (inputs or {}).items():
        request.inputs[k].CopyFrom(v if isinstance(v, tensor_pb2.TensorProto) else ndarray_to_proto(v))
    request.output_filter.extend(output_filter)
    return client.predictions.Predict(request, timeout=30)


def grpc_error(fn, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kwargs)
    return e.value.code(), e.value.details()


def assert_healthy(server, client):
    with grpc.insecure_channel(server.grpc_address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert client.log_prob("toy", np.zeros([1, 2], np.float32))["log_prob"].shape == (1,)


X = np.zeros([2, 2], np.float32)

# --- the status-code table ----------------------------------------------------------


def test_unknown_model_is_not_found(client, rest):
    assert grpc_error(predict, client, model="nope", inputs={"x": X}) == (
        grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)")
    assert rest.post("/v1/models/nope:predict", {"instances": [[0.0, 0.0]]}) == (
        404, {"error": "Servable not found for request: Latest(nope)"})
    assert rest.get("/v1/models/nope")[0] == 404


def test_unknown_version_is_not_found(client, rest):
    assert grpc_error(predict, client, inputs={"x": X}, version=9) == (
        grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(toy, 9)")
    status, body = rest.post("/v1/models/toy/versions/9:predict", {"instances": [{"seed": 1}]})
    assert (status, body["error"]) == (404, "Servable not found for request: Specific(toy, 9)")
    assert rest.get("/v1/models/toy/versions/9") == (
        404, {"error": "Could not find version 9 of model toy"})


def test_unknown_label_is_invalid_argument(client, rest):
    assert grpc_error(predict, client, inputs={"x": X}, label="canary") == (
        INVALID, "Unrecognized servable version label: canary")
    assert rest.post("/v1/models/toy/labels/canary:predict", {"instances": [{"seed": 1}]}) == (
        400, {"error": "Unrecognized servable version label: canary"})


def test_unknown_signature_is_failed_precondition_on_grpc(client, rest):
    assert grpc_error(predict, client, signature="nope", inputs={"x": X}) == (
        grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.')
    # TF Serving's REST handler reports it while reading the JSON: INVALID_ARGUMENT.
    assert rest.post("/v1/models/toy:predict", {"signature_name": "nope", "instances": [1]}) == (
        400, {"error": 'Serving signature name: "nope" not found in signature def'})


def test_missing_input_is_invalid_argument(client):
    code, message = grpc_error(predict, client, inputs={})
    assert code == INVALID
    assert message == ("input size does not match signature: 0!=1 len({}) != len({x}). "
                       "Sent extra: {}. Missing but required: {x}.")
    # A signature with defaults: the missing input without a default is named.
    code, message = grpc_error(predict, client, signature="sample",
                               inputs={"temperature": np.ones(1, np.float32)})
    assert code == INVALID
    assert message.startswith("Signature input alias: seed(feed name: ")
    assert "not found in request and no default value provided" in message


def test_extra_input_is_invalid_argument(client):
    code, message = grpc_error(predict, client, inputs={"x": X, "y": X})
    assert code == INVALID
    assert message == ("input size does not match signature: 2!=1 len({x,y}) != len({x}). "
                       "Sent extra: {y}. Missing but required: {}.")


def test_misnamed_input_is_invalid_argument(client, rest):
    code, message = grpc_error(predict, client, inputs={"X": X})
    assert code == INVALID and message.startswith("Signature input alias: x(feed name: ")
    status, body = rest.post("/v1/models/toy:predict", {"signature_name": "log_prob", "inputs": {"X": [[0.0, 0.0]]}})
    assert status == 400 and "Inputs contains invalid name" in body["error"]


def test_wrong_dtype_is_invalid_argument(client, rest):
    code, message = grpc_error(predict, client, inputs={"x": X.astype(np.float64)})
    assert code == INVALID
    assert message == ("Expects arg[0] to be float but double is provided "
                       "(input 'x' of signature 'log_prob')")
    status, body = rest.post("/v1/models/toy:predict", {"signature_name": "sample", "instances": [{"seed": 1.5}]})
    assert status == 400 and "is not of expected type: int64" in body["error"]


# --- malformed requests: right code, server stays healthy ----------------------------


def proto(dims, dtype=types_pb2.DT_FLOAT, **values):
    p = tensor_pb2.TensorProto(dtype=dtype, **values)
    for d in dims:
        p.tensor_shape.dim.add().size = d
    return p


GRPC_MALFORMED = {
    "negative dim": ({"x": proto([-1, 2])}, "is negative"),
    "overflowing dims": ({"x": proto([2**62, 2**62, 2**62])}, "more than the server's limit"),
    "declared shape far larger than content": ({"x": proto([10_000_000, 2], float_val=[1, 2, 3])},
                                               "more than the server's limit"),
    "shape larger than values, under the cap": ({"x": proto([1000, 2], float_val=[1, 2, 3])},
                                                "declares 2000 elements but the proto holds 3"),
    "tensor_content of wrong length": ({"x": proto([2, 2], tensor_content=b"\0" * 12)},
                                       "tensor_content holds 12 bytes"),
    "unknown rank": ({"x": tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT,
                                                  tensor_shape={"unknown_rank": True})}, "unknown rank"),
    "empty batch": ({"x": np.zeros([0, 2], np.float32)}, "is empty (0 rows)"),
    "NaN input": ({"x": np.array([[0.0, np.nan]], np.float32)}, "contains NaN or infinite"),
    "wrong rank": ({"x": np.zeros([2], np.float32)}, "expects shape [?,2] but got [2]"),
    "wrong fixed dim": ({"x": np.zeros([2, 3], np.float32)}, "expects shape [?,2] but got [2, 3]"),
    "too many rows": ({"x": np.zeros([5000, 2], np.float32)}, "more than the server's limit of 4096"),
}


@pytest.mark.parametrize("case", sorted(GRPC_MALFORMED))
def test_malformed_grpc_tensor_is_invalid_argument(case, server, client):
    inputs, fragment = GRPC_MALFORMED[case]
    code, message = grpc_error(predict, client, inputs=inputs)
    assert code == INVALID, message
    assert fragment in message
    assert "'x'" in message or " x:" in message  # the message names the input
    assert_healthy(server, client)


def test_huge_declared_shape_is_refused_before_decoding(client, server):
    # 22 bytes on the wire that would decode to a gigabyte.
    tiny = proto([1 << 14, 1 << 14], float_val=[1.0])
    assert len(tiny.SerializeToString()) < 30
    code, message = grpc_error(predict, client, inputs={"x": tiny})
    assert code == INVALID and "more than the server's limit" in message
    assert_healthy(server, client)


def test_mismatched_batch_sizes(client, server):
    code, message = grpc_error(predict, client, signature="sample", inputs={
        "seed": np.arange(3), "temperature": np.ones(2, np.float32)})
    assert code == INVALID and "equal 0th-dimension size" in message
    assert_healthy(server, client)


def test_bad_model_names(client, rest, server):
    for name in ("../x", "", "toy/../toy", "%2e%2e"):
        code, message = grpc_error(predict, client, model=name, inputs={"x": X})
        assert code == grpc.StatusCode.NOT_FOUND, (name, message)
    status, _ = rest.post("/v1/models/..%2Fx:predict", {"instances": [[0.0, 0.0]]})
    assert status == 404
    assert rest.get("/v1/models/")[0] == 400
    assert_healthy(server, client)


def test_bad_versions(client, rest, server):
    assert grpc_error(predict, client, inputs={"x": X}, version=-1)[0] == grpc.StatusCode.NOT_FOUND
    assert rest.post("/v1/models/toy/versions/abc:predict", {"instances": []})[0] == 400
    assert rest.post("/v1/models/toy/versions/99999999999999999999:predict", {"instances": [1]}) == (
        400, {"error": "Failed to convert version: 99999999999999999999 to numeric."})
    assert rest.get("/v1/models/toy/versions/-1")[0] == 400
    assert_healthy(server, client)


def test_bad_output_filter(client, server):
    code, message = grpc_error(predict, client, inputs={"x": X}, output_filter=["nope"])
    assert (code, message) == (INVALID, "output tensor alias not found in signature: nope Outputs "
                                        "expected to be in the set {bits_per_dim,log_prob}.")
    code, message = grpc_error(predict, client, inputs={"x": X}, output_filter=["log_prob"] * 2)
    assert (code, message) == (INVALID, "duplicate output tensor alias: log_prob")
    assert_healthy(server, client)


REST_MALFORMED = {
    "malformed JSON": (b'{"instances": [1,', "JSON Parse error"),
    "empty body": (b"", "JSON Parse error: The document is empty"),
    "not an object": (b"[1, 2]", "Is not object"),
    "no instances or inputs": (b'{"signature_name": "log_prob"}', "Missing 'inputs' or 'instances' key"),
    "both instances and inputs": (b'{"instances": [1], "inputs": [1]}', "expecting only one of"),
    "empty instances": (b'{"instances": []}', "No values in 'instances' array"),
    "signature_name not a string": (b'{"signature_name": 3, "instances": [1]}', "'signature_name' key must be a string"),
    "ragged list": (b'{"signature_name": "log_prob", "instances": [[1.0, 2.0], [1.0]]}', "Encountered list at unexpected size"),
    "string for float": (b'{"signature_name": "log_prob", "instances": [["a", "b"]]}', "is not of expected type: float"),
    "int64 overflow": (b'{"signature_name": "sample", "instances": [{"seed": 100000000000000000000000}]}', "is not of expected type: int64"),
    "malformed base64": (b'{"signature_name": "echo", "instances": [{"b64": "!!!"}]}', "Unable to base64 decode"),
    "NaN token": (b'{"signature_name": "log_prob", "instances": [[NaN, 1.0]]}', "contains NaN or infinite"),
    "unknown key in object": (b'{"signature_name": "sample", "instances": [{"seed": 1, "oops": 2}]}', "does not have named input: oops"),
    "deep nesting": (b'{"instances": ' + b"[" * 100000 + b"]" * 100000 + b"}", "JSON Parse error"),
}


@pytest.mark.parametrize("case", sorted(REST_MALFORMED))
def test_malformed_rest_body_is_400(case, rest, server, client):
    raw, fragment = REST_MALFORMED[case]
    status, body = rest.post("/v1/models/toy:predict", raw=raw)
    assert status == 400, body
    assert fragment in body["error"]
    assert_healthy(server, client)


def test_b64_strings_round_trip(rest):
    data = bytes(range(256))
    status, body = rest.post("/v1/models/toy:predict", {
        "signature_name": "echo",
        "instances": [{"b64": base64.b64encode(data).decode()}, "plain"]})
    assert status == 200, body
    first, second = body["predictions"]
    assert first["length"] == 256 and base64.b64decode(first["echo_bytes"]["b64"]) == data
    assert second == {"length": 5, "echo_bytes": {"b64": base64.b64encode(b"plain").decode()}}


def test_oversized_messages_are_refused(exported, tmp_path):
    import shutil

    from serving_helpers import Rest, make_server
    from tfgen.serving import Client
    from tfgen.serving.model_manager import ModelConfig

    shutil.copytree(exported["toy"], tmp_path / "toy" / "1")
    small = make_server([ModelConfig("toy", str(tmp_path / "toy"))], max_message_bytes=16 * 1024)
    try:
        with Client(small.grpc_address) as c:
            with pytest.raises(grpc.RpcError) as e:
                c.log_prob("toy", np.zeros([4096, 2], np.float32))
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            status, body = Rest(small.rest_url).post(
                "/v1/models/toy:predict", {"signature_name": "log_prob", "instances": [[0.5, 0.5]] * 3000})
            assert status == 400 and "Request body too large" in body["error"]
            assert c.log_prob("toy", np.zeros([1, 2], np.float32))["log_prob"].shape == (1,)
    finally:
        small.stop()


def test_metadata_request_checks(client):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "toy"
    assert grpc_error(client.predictions.GetModelMetadata, request, timeout=10) == (
        INVALID, "GetModelMetadataRequest must specify at least one metadata_field")
    request.metadata_field.append("bogus")
    assert grpc_error(client.predictions.GetModelMetadata, request, timeout=10) == (
        INVALID, "Metadata field bogus is not supported")


def test_classify_regress_multiinference_on_predict_only_model(client, rest):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "toy"
    assert grpc_error(client.predictions.Classify, request, timeout=10) == (
        INVALID, "Expected classification signature method_name to be tensorflow/serving/classify. "
                 "Was: tensorflow/serving/predict")
    request.model_spec.signature_name = "nope"
    assert grpc_error(client.predictions.Classify, request, timeout=10) == (
        INVALID, "No signature was found with the name: nope")
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "toy"
    assert grpc_error(client.predictions.Regress, request, timeout=10) == (
        INVALID, "Expected regression signature method_name to be tensorflow/serving/regress. "
                 "Was: tensorflow/serving/predict")
    request = inference_pb2.MultiInferenceRequest()
    task = request.tasks.add(method_name="tensorflow/serving/classify")
    task.model_spec.name = "toy"
    assert grpc_error(client.predictions.MultiInference, request, timeout=10)[0] == INVALID
    task.method_name = "tensorflow/serving/predict"
    assert grpc_error(client.predictions.MultiInference, request, timeout=10) == (
        grpc.StatusCode.UNIMPLEMENTED, "Unsupported signature method_name: tensorflow/serving/predict")
    assert rest.post("/v1/models/toy:classify", {"examples": [{}]})[0] == 400
    assert rest.post("/v1/models/toy:regress", {"examples": [{}]})[0] == 400
