"""gRPC and REST answers equal an in-process call of the same signature."""

import re
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

import toy_savedmodels as sm


@pytest.fixture(scope="module")
def in_process(exported):
    return {name: tf.saved_model.load(path) for name, path in exported.items()}


def call(loaded, signature, **inputs):
    fn = loaded.signatures[signature]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def test_grpc_sample_equals_in_process_call(client, in_process):
    seeds = np.array([3, 1, 4, 1, 5], np.int64)
    temperature = np.full(5, 0.5, np.float32)
    got = client.sample("toy", seeds, temperature=0.5)
    want = call(in_process["toy"], "sample", seed=seeds, temperature=temperature)
    np.testing.assert_array_equal(got["samples"], want["samples"])
    np.testing.assert_array_equal(got["log_prob"], want["log_prob"])
    # Same seed, same sample, whatever the batch.
    np.testing.assert_array_equal(got["samples"][1], got["samples"][3])


def test_grpc_conditional_sample_and_log_prob(client, in_process):
    seeds = np.arange(4, dtype=np.int64)
    got = client.sample("cond", seeds, condition=[0, 1, 2, 0])
    want = call(in_process["cond"], "sample", seed=seeds, temperature=np.ones(4, np.float32),
                condition=np.array([0, 1, 2, 0], np.int32))
    np.testing.assert_array_equal(got["samples"], want["samples"])
    scores = client.log_prob("cond", got["samples"], condition=[0, 1, 2, 0])
    want_lp, want_bpd = sm.log_prob_np(got["samples"], [0, 1, 2, 0])
    np.testing.assert_allclose(scores["log_prob"], want_lp, rtol=1e-6)
    np.testing.assert_allclose(scores["bits_per_dim"], want_bpd, rtol=1e-6)


def test_signature_default_fills_missing_temperature(client, in_process):
    got = client.sample("toy", [7, 8])
    want = call(in_process["toy"], "sample", seed=np.array([7, 8], np.int64),
                temperature=np.ones(2, np.float32))
    np.testing.assert_array_equal(got["samples"], want["samples"])


def test_predict_response_names_resolved_version_and_signature(client):
    response = client.predict_response("toy", {"seed": np.array([1], np.int64)})
    assert response.model_spec.name == "toy"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    # Outputs are typed fields, as TF Serving's default AsProtoField encoding.
    assert len(response.outputs["samples"].float_val) == 2
    assert not response.outputs["samples"].tensor_content


def test_output_filter_returns_only_requested_outputs(client):
    response = client.predict_response(
        "toy", {"x": np.zeros([1, 2], np.float32)}, "log_prob", output_filter=["bits_per_dim"]
    )
    assert list(response.outputs) == ["bits_per_dim"]


def test_encode_decode_round_trip(client):
    x = np.array([[0.5, -1.0]], np.float32)
    z = client.predict("toy", {"x": x}, "encode")["z"]
    np.testing.assert_array_equal(client.predict("toy", {"z": z}, "decode")["x"], x)


def test_tensor_content_requests_are_accepted(client):
    # tf.make_tensor_proto writes tensor_content; the client writes typed fields.
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "toy"
    request.model_spec.signature_name = "log_prob"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones([3, 2], np.float32)))
    response = client.predictions.Predict(request, timeout=30)
    assert tf.make_ndarray(response.outputs["log_prob"]).shape == (3,)


def test_grpc_metadata_lists_signature_defs(client):
    metadata = client.metadata("toy")
    assert metadata["version"] == 1
    sample = metadata["signature_def"]["sample"]
    assert sample["inputs"]["seed"]["dtype"] == "DT_INT64"
    assert "temperature" in sample["defaults"]
    assert set(metadata["signature_def"]) >= {"sample", "log_prob", "encode", "decode", "serving_default"}


def test_grpc_status_reports_available(client):
    assert client.status("toy") == [
        {"version": 1, "state": "AVAILABLE", "error_code": 0, "error_message": ""}
    ]


def test_rest_row_format_matches_grpc(rest, client):
    status, body = rest.post(
        "/v1/models/toy:predict",
        {"signature_name": "sample", "instances": [{"seed": 5, "temperature": 0.5}, {"seed": 6, "temperature": 0.5}]},
    )
    assert status == 200, body
    want = client.sample("toy", [5, 6], temperature=0.5)
    got = np.array([row["samples"] for row in body["predictions"]], np.float32)
    np.testing.assert_array_equal(got, want["samples"])


def test_rest_columnar_format_matches_in_process(rest, in_process):
    x = [[0.0, 1.0], [2.0, -1.0]]
    status, body = rest.post("/v1/models/toy:predict", {"signature_name": "log_prob", "inputs": {"x": x}})
    assert status == 200, body
    want = call(in_process["toy"], "log_prob", x=np.array(x, np.float32))
    np.testing.assert_array_equal(np.array(body["outputs"]["log_prob"], np.float32), want["log_prob"])


def test_rest_single_input_plain_list_and_single_output(rest):
    status, body = rest.post("/v1/models/toy:predict", {"signature_name": "encode", "instances": [[1.0, 2.0]]})
    assert status == 200, body
    assert body == {"predictions": [[1.0, 2.0]]}
    status, body = rest.post("/v1/models/toy/versions/1:predict", {"signature_name": "encode", "inputs": [[0.2, 3]]})
    assert status == 200, body
    assert body == {"outputs": [[0.2, 3.0]]}  # shortest float text, as TF Serving writes


def test_rest_status_and_metadata(rest):
    status, body = rest.get("/v1/models/toy")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]}
    status, body = rest.get("/v1/models/toy/versions/1/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "toy", "version": "1", "signature_name": ""}
    sigs = body["metadata"]["signature_def"]["signature_def"]
    assert sigs["log_prob"]["outputs"]["bits_per_dim"]["dtype"] == "DT_FLOAT"


def test_health_endpoints(rest, server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    assert rest.get("/healthz")[0] == 200
    status, body = rest.get("/readyz")
    assert status == 200 and body["models"] == ["cond", "toy"]
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "tensorflow.serving.PredictionService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def samples(text):
    """[(name, {label: value}, value)] of a Prometheus text page, as a scraper reads it."""
    rows = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, labels, value = re.fullmatch(r"([^{\s]+)(?:\{(.*)\})? (\S+)", line).groups()
            pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or "")
            rows.append((name, dict(pairs), float(value)))
    return rows


def test_prometheus_metrics_use_tf_serving_names(rest, client):
    client.log_prob("toy", np.zeros([1, 2], np.float32))
    status, text = rest.get("/monitoring/prometheus/metrics")
    assert status == 200
    assert '# TYPE :tensorflow:serving:request_count counter' in text
    assert ':tensorflow:serving:request_count{model_name="toy",status="OK"}' in text
    # prometheus_client writes label names sorted; Prometheus reads them in any order.
    assert any(name == ":tensorflow:serving:request_latency_bucket"
               and {"model_name": "toy", "API": "Predict", "entrypoint": "GRPC"}.items() <= labels.items()
               for name, labels, _ in samples(text))
    assert ':tensorflow:cc:saved_model:load_attempt_count{model_path=' in text


def test_prometheus_page_is_tf_serving_s_text_format(rest, client):
    """Counters without `_total`, no `_created` series, each sample under its `# TYPE`."""
    with urllib.request.urlopen(rest.base_url + "/monitoring/prometheus/metrics", timeout=30) as r:
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    count = ":tensorflow:serving:request_count"

    def ok_requests():
        text = rest.get("/monitoring/prometheus/metrics")[1]
        return sum(v for n, labels, v in samples(text)
                   if n == count and labels == {"model_name": "toy", "status": "OK"})

    before = ok_requests()
    client.log_prob("toy", np.zeros([1, 2], np.float32))
    client.log_prob("toy", np.zeros([1, 2], np.float32))
    assert ok_requests() == before + 2
    text = rest.get("/monitoring/prometheus/metrics")[1]
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert types[count] == "counter"
    assert types[":tensorflow:cc:saved_model:load_attempt_count"] == "counter"
    assert types[":tensorflow:serving:request_latency"] == "histogram"
    for name, _, _ in samples(text):
        assert not name.endswith(("_total", "_created")), name
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, name


def test_deadline_is_honoured(client):
    from tfgen.serving import Client

    # A 100 us deadline can still be met now and then by a warm loopback call; what
    # must never happen is another outcome than OK or DEADLINE_EXCEEDED, or no expiry
    # at all in ten tries.
    outcomes = []
    with Client(client.address, timeout=1e-4) as fast:
        for _ in range(10):
            try:
                fast.sample("toy", np.arange(64))
                outcomes.append("OK")
            except grpc.RpcError as e:
                outcomes.append(e.code())
    assert grpc.StatusCode.DEADLINE_EXCEEDED in outcomes
    assert set(outcomes) <= {"OK", grpc.StatusCode.DEADLINE_EXCEEDED}, outcomes
