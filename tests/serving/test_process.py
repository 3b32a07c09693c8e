"""`tfgen serve` as a real process: ready line, model discovery, SIGTERM drain, TLS."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import serving_models as sm
from conftest import Rest, make_server
from tfgen.serving import Client

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ServeProcess:
    def __init__(self, args, cwd, log_path):
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tfgen.cli", "serve", "--port", "0", "--rest_api_port", "0", *args],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True,
        )
        self.ready = self._wait_ready()
        self.grpc = re.search(r"gRPC (\S+?);", self.ready).group(1)
        self.rest = re.search(r"REST (http://\S+)", self.ready).group(1)

    def _wait_ready(self, timeout=90):
        box = {}

        def read():
            for line in self.proc.stdout:
                if line.startswith("tfgen serve: ready"):
                    box["line"] = line.strip()
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        if "line" not in box:
            self.proc.kill()
            self.log.close()
            raise AssertionError("server not ready: " + open(self.log.name).read()[-3000:])
        return box["line"]

    def terminate(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.log.close()
        return code


def health(address):
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_tfgen_serve_with_no_flags_serves_every_model_under_saved_models(exported, tmp_path):
    for name, src in exported.items():
        sm.copy_version(src, str(tmp_path / "saved_models" / name), 1)
    server = ServeProcess([], cwd=tmp_path, log_path=tmp_path / "serve.log")
    try:
        assert "2 model(s) cond, toy" in server.ready
        assert "curl" in server.ready and "/v1/models/cond" in server.ready
        with Client(server.grpc) as c:
            np.testing.assert_allclose(c.sample("toy", [3])["samples"], sm.sample_np([3]), rtol=1e-6)
        status, body = Rest(server.rest).get("/v1/models/cond")
        assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
        # The example request printed in the ready line works as printed.
        example = re.search(r"curl -d '(.*?)' (\S+:predict)", server.ready)
        status, body = Rest("").post(example.group(2), raw=example.group(1).encode())
        assert status == 200 and len(body["predictions"]) == 1
    finally:
        assert server.terminate() == 0


def test_sigterm_reports_unhealthy_drains_in_flight_requests_then_exits(exported, tmp_path):
    sm.copy_version(exported["toy"], str(tmp_path / "models" / "toy"), 1)
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 1500000 }\n"
                        "num_batch_threads { value: 1 }\n")
    server = ServeProcess(
        ["--model_name", "toy", "--model_base_path", str(tmp_path / "models" / "toy"),
         "--batching_parameters_file", str(batching), "--drain_delay_seconds", "0.6"],
        cwd=tmp_path, log_path=tmp_path / "serve.log")
    assert health(server.grpc) == health_pb2.HealthCheckResponse.SERVING
    result = {}

    def in_flight():
        with Client(server.grpc) as c:
            result["r"] = c.log_prob("toy", np.zeros([1, 2], np.float32))

    t = threading.Thread(target=in_flight)
    t.start()
    time.sleep(0.4)  # the request waits in the batch queue
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert health(server.grpc) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert Rest(server.rest).get("/readyz")[0] == 503
    t.join(30)
    assert result["r"]["log_prob"].shape == (1,)
    assert server.proc.wait(60) == 0
    server.log.close()
    assert "draining" in open(tmp_path / "serve.log").read()


def test_missing_model_directory_is_a_one_line_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-m", "tfgen.cli", "serve", "--model_dir", str(tmp_path / "nothing")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "tfgen serve: error: model directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tls_on_the_grpc_port(exported, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl not available")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    from tfgen.serving.config import read_ssl_config_file
    from tfgen.serving.model_manager import ModelConfig

    ssl_file = tmp_path / "ssl.config"
    def escaped(path):  # a text proto string holds the PEM's newlines as \n
        return path.read_text().replace("\n", "\\n")

    ssl_file.write_text(f'server_key: "{escaped(key)}"\nserver_cert: "{escaped(cert)}"\n')
    config = read_ssl_config_file(str(ssl_file))
    assert config.server_cert.startswith("-----BEGIN CERTIFICATE-----\n")
    sm.copy_version(exported["toy"], str(tmp_path / "toy"), 1)
    srv = make_server([ModelConfig("toy", str(tmp_path / "toy"))], ssl_config=config)
    try:
        with Client(srv.grpc_address, root_certificates=cert.read_bytes()) as c:
            assert c.log_prob("toy", np.zeros([1, 2], np.float32))["log_prob"].shape == (1,)
        with Client(srv.grpc_address, timeout=5) as plain:
            with pytest.raises(grpc.RpcError):
                plain.log_prob("toy", np.zeros([1, 2], np.float32))
    finally:
        srv.stop()
