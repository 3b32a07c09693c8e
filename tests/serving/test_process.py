"""`tfgen serve` as a real process: ready line, model discovery, SIGTERM drain, TLS, and
its flags meaning what tensorflow_model_server's mean."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import toy_savedmodels as sm
from serving_helpers import Rest, make_server
from tfgen.cli import main
from tfgen.errors import UserError
from tfgen.serving import Client

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
SERVE = [sys.executable, "-m", "tfgen.cli", "serve"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`tfgen serve ARGS` on free loopback ports; `rest=False` passes --rest_api_port 0."""

    def __init__(self, args, cwd, log_path, rest=True, attempts=3):
        for attempt in range(attempts):
            self.port = free_port()
            ports = ["--port", str(self.port), "--rest_api_port", str(free_port() if rest else 0)]
            self.log = open(log_path, "w")
            self.proc = subprocess.Popen(
                SERVE + ports + list(args), cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                stderr=self.log, text=True,
            )
            line = self._wait_ready()
            if line:
                break
            self.log.close()
            log = open(log_path).read()
            # Another process may take a free port before this one binds it: try others.
            if "cannot listen" not in log and "are both" not in log or attempt == attempts - 1:
                raise AssertionError("server not ready: " + log[-3000:])
        self.ready = line
        self.grpc = re.search(r"gRPC (\S+?);", line).group(1)
        rest_url = re.search(r"REST (http://\S+)", line)
        self.rest = rest_url.group(1) if rest_url else None

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
            self.proc.wait()
        return box.get("line")

    def terminate(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.log.close()
        return code


def listening_tcp_ports(pid):
    """The TCP ports process `pid` listens on, from /proc (Linux)."""
    fd_dir = f"/proc/{pid}/fd"
    inodes = set()
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                fields = row.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def metric_value(text, sample):
    """The value of one exposition line `sample` (name and labels as written), or None."""
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


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
        # As TF Serving: no metrics page without --monitoring_config_file.
        status, body = Rest(server.rest).get("/monitoring/prometheus/metrics")
        assert status == 404 and "error" in body
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
         "--enable_batching", "--batching_parameters_file", str(batching),
         "--drain_delay_seconds", "0.6"],
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
    log = open(tmp_path / "serve.log").read()
    assert "draining" in log
    assert "warmup records" in log  # replayed by default (--enable_model_warmup)


def test_a_server_process_imports_no_keras(tmp_path):
    """`import tensorflow` imports tf_keras (under the TF_USE_LEGACY_KERAS that `tfgen`
    sets) or Keras 3 eagerly, about 0.5 s of a server's start-up: `tfgen serve` runs
    signature functions and needs neither."""
    code = ("import sys; from tfgen.serving.cli import skip_keras_import; skip_keras_import(); "
            "import tensorflow; from tfgen.serving.server import ModelServer; "
            "print(sorted(m for m, module in sys.modules.items() "
            "if m.split('.')[0] in ('keras', 'tf_keras') and module is not None))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_missing_model_directory_is_a_one_line_error(tmp_path):
    proc = subprocess.run(
        SERVE + ["--model_dir", str(tmp_path / "nothing")],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "tfgen serve: error: model directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rest_api_port_0_turns_the_rest_api_off(exported, tmp_path):
    """As tensorflow_model_server's: 0 is no HTTP server at all, not "any free port"."""
    sm.copy_version(exported["toy"], str(tmp_path / "toy"), 1)
    server = ServeProcess(["--model_name", "toy", "--model_base_path", str(tmp_path / "toy")],
                          cwd=tmp_path, log_path=tmp_path / "serve.log", rest=False)
    try:
        assert server.rest is None and "no REST API" in server.ready
        with Client(server.grpc) as c:
            assert c.log_prob("toy", np.zeros([1, 2], np.float32))["log_prob"].shape == (1,)
        assert listening_tcp_ports(server.proc.pid) == {server.port}
    finally:
        assert server.terminate() == 0


def compute_threads(pid):
    """Threads of TensorFlow's intra-op pool (Eigen names them tf_Compute)."""
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return names.count("tf_Compute")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="TensorFlow's default pool is one thread here")
def test_tensorflow_parallelism_flags_size_tensorflows_pools(exported, tmp_path):
    sm.copy_version(exported["toy"], str(tmp_path / "toy"), 1)
    counts = {}
    for flags in ([], ["--tensorflow_intra_op_parallelism", "1", "--tensorflow_inter_op_parallelism=1"]):
        server = ServeProcess(["--model_name", "toy", "--model_base_path", str(tmp_path / "toy"), *flags],
                              cwd=tmp_path, log_path=tmp_path / "serve.log", rest=False)
        try:
            with Client(server.grpc) as c:
                assert c.log_prob("toy", np.zeros([1, 2], np.float32))["log_prob"].shape == (1,)
            counts[bool(flags)] = compute_threads(server.proc.pid)
        finally:
            assert server.terminate() == 0
    assert counts[True] == 1 and counts[False] >= 2, counts


def test_enable_batching_alone_batches_and_boolean_flags_take_tf_serving_forms(exported, tmp_path):
    sm.copy_version(exported["toy"], str(tmp_path / "toy"), 1)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }')
    server = ServeProcess(
        ["--model_name", "toy", "--model_base_path", str(tmp_path / "toy"),
         "--enable_batching", "--enable_model_warmup=false",
         "--monitoring_config_file", str(monitoring)],
        cwd=tmp_path, log_path=tmp_path / "serve.log")
    try:
        with Client(server.grpc) as c:
            c.log_prob("toy", np.zeros([3, 2], np.float32))
        metrics = Rest(server.rest).get("/monitoring/prometheus/metrics")[1]
        batch = ":tensorflow:serving:batching_session:processed_batch_size"
        assert metric_value(metrics, f'{batch}_sum{{model_name="toy",signature_name="log_prob"}}') == 3
        # With no --batching_parameters_file, TF Serving's defaults and thread pool name.
        queuing = ":tensorflow:serving:batching_session:queuing_latency"
        pool = 'thread_pool_name="model_server_batch_threads"'
        assert metric_value(metrics, f"{queuing}_count{{{pool}}}") == 1
    finally:
        assert server.terminate() == 0
    assert "warmup records" not in open(tmp_path / "serve.log").read()


@pytest.mark.parametrize("flags", [[], ["--enable_batching=false"]], ids=["no-flag", "false"])
def test_batching_parameters_file_without_enable_batching_is_refused(exported, tmp_path, flags):
    """TF Serving refuses to start then; tfgen serve too, rather than batch or ignore it."""
    sm.copy_version(exported["toy"], str(tmp_path / "toy"), 1)
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 8 }\n")
    proc = subprocess.run(
        SERVE + ["--port", str(free_port()), "--rest_api_port", "0", "--model_name", "toy",
                 "--model_base_path", str(tmp_path / "toy"),
                 "--batching_parameters_file", str(batching), *flags],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "tfgen serve: error: --batching_parameters_file is set without --enable_batching: add "
        "--enable_batching to batch (TF Serving refuses this combination too)")


@pytest.mark.parametrize("flags, message", [
    (["--port", "0"], "--port must be 1..65535, got 0 (0 turns gRPC off in TF Serving"),
    (["--rest_api_port", "-1"], "--rest_api_port must be 0 (no REST API) or 1..65535, got -1"),
    (["--port", "9000", "--rest_api_port", "9000"], "--rest_api_port and --port are both 9000"),
    (["--runtime_threads", "0"], "--runtime_threads must be at least 1 (threads), got 0"),
    (["--max_rows_per_request", "0"], "--max_rows_per_request must be at least 1 (rows), got 0"),
    (["--grace_seconds", "-1"], "--grace_seconds must be at least 0 (seconds), got -1.0"),
    (["--drain_delay_seconds", "nan"], "--drain_delay_seconds must be at least 0 (seconds), got nan"),
    (["--file_system_poll_wait_seconds", "-0.5"], "--file_system_poll_wait_seconds must be at least 0"),
    (["--rest_max_connections", "0"], "--rest_max_connections must be at least 1"),
    (["--tensorflow_intra_op_parallelism", "-1"],
     "--tensorflow_intra_op_parallelism must be at least 0 (threads; 0: TensorFlow's choice), got -1"),
])
def test_ports_that_cannot_work_are_one_line_errors(tmp_path, capsys, flags, message):
    assert main(["serve", "--model_dir", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tfgen serve: error: {message}") and err.count("\n") == 1


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
    # A key that does not match its certificate was reported as "port in use".
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"], check=True,
                   capture_output=True)
    config.server_key = other.read_text()
    with pytest.raises(UserError, match="refused the key or certificate of --ssl_config_file"):
        make_server([ModelConfig("toy", str(tmp_path / "toy"))], ssl_config=config)
