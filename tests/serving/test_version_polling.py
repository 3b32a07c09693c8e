"""Version directories: polling, swap under load, failed loads, warmup, policies, labels,
config reload."""

import os
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import model_management_pb2

import toy_savedmodels as sm
from serving_helpers import Rest, make_server
from tfgen.serving import Client
from tfgen.serving.batching import BatchingParameters
from tfgen.serving.config import read_model_config_file
from tfgen.serving.model_manager import ModelConfig


def wait_for(predicate, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def states(client, model="toy"):
    return {s["version"]: s["state"] for s in client.status(model)}


@pytest.mark.parametrize("batching", [False, True], ids=["batching-off", "batching-on"])
def test_new_version_under_load_switches_with_zero_failures(batching, exported, tmp_path):
    base = tmp_path / "toy"
    sm.copy_version(exported["toy"], str(base), 1)
    params = BatchingParameters(max_batch_size=16, batch_timeout_micros=2000,
                                max_enqueued_batches=1000, num_batch_threads=2) if batching else None
    srv = make_server([ModelConfig("toy", str(base))], batching=params)
    stop = threading.Event()
    seen, failures = [], []

    def load():
        with Client(srv.grpc_address) as c:
            while not stop.is_set():
                try:
                    r = c.predict_response("toy", {"x": np.zeros([1, 2], np.float32)}, "log_prob")
                    seen.append(r.model_spec.version.value)
                except grpc.RpcError as e:
                    failures.append((e.code(), e.details()))

    threads = [threading.Thread(target=load) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: len(seen) > 20)
        sm.copy_version(exported["toy"], str(base), 2)
        wait_for(lambda: seen and seen[-1] == 2)
        n = len(seen)
        wait_for(lambda: len(seen) > n + 20)  # keep loading while version 1 unloads
        with Client(srv.grpc_address) as c:
            wait_for(lambda: states(c) == {1: "END", 2: "AVAILABLE"})
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
        srv.stop()
    assert failures == []
    assert seen[0] == 1 and seen[-1] == 2
    switch = seen.index(2)
    assert all(v == 2 for v in seen[switch + 12:])  # in-flight v1 answers may trail briefly


def test_corrupt_version_is_reported_and_old_version_keeps_serving(exported, tmp_path):
    base = tmp_path / "toy"
    sm.copy_version(exported["toy"], str(base), 1)
    srv = make_server([ModelConfig("toy", str(base))])
    try:
        with Client(srv.grpc_address) as c:
            sm.write_corrupt_version(str(base), 2)
            status = wait_for(lambda: [s for s in c.status("toy") if s["version"] == 2 and s["state"] == "END"])
            assert status[0]["error_code"] != 0
            assert "Loading servable: {name: toy version: 2} failed" in status[0]["error_message"]
            assert states(c) == {1: "AVAILABLE", 2: "END"}
            r = c.predict_response("toy", {"x": np.zeros([1, 2], np.float32)}, "log_prob")
            assert r.model_spec.version.value == 1
            rest_status = Rest(srv.rest_url).get("/v1/models/toy/versions/2")[1]
            assert rest_status["model_version_status"][0]["state"] == "END"
            assert rest_status["model_version_status"][0]["status"]["error_code"] != "OK"
    finally:
        srv.stop()


def test_a_truncated_warmup_file_fails_the_load_naming_the_file(exported, tmp_path):
    base = tmp_path / "toy"
    sm.copy_version(exported["toy"], str(base), 1)
    srv = make_server([ModelConfig("toy", str(base))])
    try:
        with Client(srv.grpc_address) as c:
            tmp = base / ".tmp-2"
            shutil.copytree(exported["toy"], tmp)
            warmup = tmp / "assets.extra" / "tf_serving_warmup_requests"
            warmup.write_bytes(warmup.read_bytes()[:-7])
            os.rename(tmp, base / "2")
            status = wait_for(lambda: [s for s in c.status("toy") if s["version"] == 2 and s["state"] == "END"])
            message = status[0]["error_message"]
            assert "tf_serving_warmup_requests: truncated record" in message, message
            assert states(c) == {1: "AVAILABLE", 2: "END"}
    finally:
        srv.stop()


def test_only_complete_integer_directories_count(exported, tmp_path, caplog):
    base = tmp_path / "toy"
    sm.copy_version(exported["toy"], str(base), 1)
    os.makedirs(base / "7")  # an integer directory still being written: no saved_model.pb
    # Complete SavedModels under names that are not versions (see tfgen.versions).
    for name in ("8.partial", "latest", "²", str(2**63)):
        shutil.copytree(exported["toy"], base / name)
    with caplog.at_level("WARNING", logger="tfgen.serving"):
        srv = make_server([ModelConfig("toy", str(base))])
        try:
            with Client(srv.grpc_address) as c:
                time.sleep(0.6)  # three polls
                assert states(c) == {1: "AVAILABLE"}
        finally:
            srv.stop()
    # Names that look like versions but are not: one warning each, not one per poll.
    warned = [r.getMessage() for r in caplog.records if "a version is ASCII digits" in r.getMessage()]
    assert len(warned) == 2 and any("'²'" in m for m in warned), warned


def test_failing_warmup_fails_the_load_with_its_reason(tmp_path):
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    bad = predict_pb2.PredictRequest()
    bad.model_spec.signature_name = "log_prob"
    bad.inputs["wrong_name"].float_val.append(1.0)
    record = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=bad)).SerializeToString()
    base = tmp_path / "toy"
    sm.write_model(str(base), 1)
    sm.write_model(str(base), 2, extra_warmup=[record])
    srv = make_server([ModelConfig("toy", str(base))])
    try:
        with Client(srv.grpc_address) as c:
            st = {s["version"]: s for s in c.status("toy")}
            assert st[2]["state"] == "END"
            assert "warmup request 3 failed" in st[2]["error_message"]
            # The latest policy keeps the previous version while the new one fails.
            assert st[1]["state"] == "AVAILABLE"
    finally:
        srv.stop()


CONFIG = """
model_config_list {
  config {
    name: "toy"
    base_path: "%(base)s"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 3 }
  }
  config {
    name: "every"
    base_path: "%(base)s"
    model_version_policy { all {} }
  }
  config {
    name: "newest"
    base_path: "%(base)s"
    model_version_policy { latest { num_versions: 2 } }
  }
}
"""


def test_model_config_file_policies_and_labels(exported, tmp_path):
    base = tmp_path / "toy"
    for v in (1, 2, 3):
        sm.copy_version(exported["toy"], str(base), v)
    path = tmp_path / "models.config"
    path.write_text(CONFIG % {"base": base})
    srv = make_server(read_model_config_file(str(path)))
    try:
        with Client(srv.grpc_address) as c:
            assert states(c, "toy") == {1: "AVAILABLE", 3: "AVAILABLE"}
            assert states(c, "every") == {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"}
            assert states(c, "newest") == {2: "AVAILABLE", 3: "AVAILABLE"}
            x = {"x": np.zeros([1, 2], np.float32)}
            assert c.predict_response("toy", x, "log_prob", label="stable").model_spec.version.value == 1
            assert c.predict_response("toy", x, "log_prob", label="canary").model_spec.version.value == 3
            assert c.predict_response("toy", x, "log_prob").model_spec.version.value == 3
            rest = Rest(srv.rest_url)
            status, body = rest.post("/v1/models/toy/labels/stable:predict",
                                     {"signature_name": "log_prob", "instances": [[0.0, 0.0]]})
            assert status == 200, body
            assert rest.get("/v1/models/toy/labels/canary")[1]["model_version_status"][0]["version"] == "3"
    finally:
        srv.stop()


def test_reload_config_replaces_the_model_list(exported, tmp_path):
    for name in ("toy", "cond"):
        sm.copy_version(exported[name], str(tmp_path / name), 1)
    srv = make_server([ModelConfig("toy", str(tmp_path / "toy"))])
    try:
        with Client(srv.grpc_address) as c:
            request = model_management_pb2.ReloadConfigRequest()
            entry = request.config.model_config_list.config.add(name="cond", base_path=str(tmp_path / "cond"))
            response = c.models.HandleReloadConfigRequest(request, timeout=60)
            assert response.status.error_code == 0
            assert c.sample("cond", [1], condition=[2])["samples"].shape == (1, 2)
            wait_for(lambda: _not_found(c, "toy"))
            # A label may only name a version that is AVAILABLE (TF Serving's rule).
            entry.version_labels["stable"] = 5
            with pytest.raises(grpc.RpcError) as e:
                c.models.HandleReloadConfigRequest(request, timeout=60)
            assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            bad = model_management_pb2.ReloadConfigRequest()
            bad.config.model_config_list.config.add(name="../x", base_path=str(tmp_path))
            with pytest.raises(grpc.RpcError) as e:
                c.models.HandleReloadConfigRequest(bad, timeout=60)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        srv.stop()


def _not_found(c, model):
    try:
        c.log_prob(model, np.zeros([1, 2], np.float32))
    except grpc.RpcError as e:
        return e.code() == grpc.StatusCode.NOT_FOUND
    return False


def test_label_on_a_version_that_never_loads_fails_startup(exported, tmp_path):
    sm.copy_version(exported["toy"], str(tmp_path / "toy"), 1)
    config = ModelConfig("toy", str(tmp_path / "toy"), labels={"stable": 2})
    with pytest.raises(ValueError, match="Request to assign label to version 2 of model toy"):
        make_server([config])


def test_reload_with_a_new_base_path_serves_the_new_directory(exported, tmp_path):
    sm.copy_version(exported["toy"], str(tmp_path / "a"), 1)
    sm.copy_version(exported["cond"], str(tmp_path / "b"), 1)
    srv = make_server([ModelConfig("m", str(tmp_path / "a"))])
    try:
        with Client(srv.grpc_address) as c:
            assert "condition" not in c.metadata("m")["signature_def"]["sample"]["inputs"]
            request = model_management_pb2.ReloadConfigRequest()
            request.config.model_config_list.config.add(name="m", base_path=str(tmp_path / "b"))
            c.models.HandleReloadConfigRequest(request, timeout=60)
            assert "condition" in c.metadata("m")["signature_def"]["sample"]["inputs"]
    finally:
        srv.stop()


@pytest.mark.serial
@pytest.mark.slow
def test_soak_repeated_swaps_under_load_never_fail_a_request(exported, tmp_path):
    """32 clients for ~20 s while a new version lands every 3 s, batching on."""
    base = tmp_path / "toy"
    sm.copy_version(exported["toy"], str(base), 1)
    params = BatchingParameters(max_batch_size=32, batch_timeout_micros=1000,
                                max_enqueued_batches=1000, num_batch_threads=2)
    srv = make_server([ModelConfig("toy", str(base))], batching=params)
    stop = threading.Event()
    seen, failures = [], []

    def load(i):
        with Client(srv.grpc_address) as c:
            while not stop.is_set():
                try:
                    if i % 2:
                        r = c.predict_response("toy", {"seed": np.array([i], np.int64)}, "sample")
                    else:
                        r = c.predict_response("toy", {"x": np.zeros([1, 2], np.float32)}, "log_prob")
                    seen.append(r.model_spec.version.value)
                except grpc.RpcError as e:
                    failures.append((e.code(), e.details()))

    threads = [threading.Thread(target=load, args=(i,)) for i in range(32)]
    try:
        for t in threads:
            t.start()
        for version in range(2, 8):
            time.sleep(3)
            sm.copy_version(exported["toy"], str(base), version)
        wait_for(lambda: seen and seen[-1] == 7)
    finally:
        stop.set()
        for t in threads:
            t.join()
        srv.stop()
    assert failures == []
    assert len(set(seen)) >= 6 and len(seen) > 1000
