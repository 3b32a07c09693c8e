"""Serving throughput: batch-1 `log_prob` and `sample` requests over gRPC, batching off vs on.

For each signature and each number of concurrent clients (1, 8, 64 by default) this
measures requests/s and p50/p99 latency of

  in-process   the SavedModel's signature called in this process (tf.saved_model.load),
               by as many Python threads as there are clients, same inputs;
  off          `tfgen serve` without batching;
  on           `tfgen serve --enable_batching --batching_parameters_file F`;

and prints them side by side with the on/off ratio of requests/s. The server is a real
subprocess (`python -m tfgen.cli serve ...`) on free loopback ports. The clients run in
load-generator processes separate from the server (`--load-processes`, spawned, importing
only grpcio): each runs a grpc.aio event loop with its share of the clients, every client
sending its next request as soon as the previous one is answered. Requests are serialized
once, up front, so the clients spend no time building protos. Each cell warms up for
`--warmup` seconds, then counts the requests answered during `--duration` seconds and
stops by itself.

The model is the shipped saved_models/digits_realnvp (newest version) if present, else a
RealNVP of the same configuration (tf_configs/digits_realnvp.yaml, untrained weights:
same cost per call) exported into a temporary directory. Inputs: the first scikit-learn
digit for `log_prob`; seed 0, temperature 1.0 for `sample`.

    python bench/serving.py                         # the table in docs/benchmarks.md
    python bench/serving.py --tune                  # + 64-client sweep of batching files
    python bench/serving.py --duration 2 --clients 1,64 --signatures log_prob
    python bench/serving.py --quick                 # smoke run (bench/run_all.py --quick)
    python bench/serving.py --echo --clients 64     # issue 7: ratio to a gRPC echo server
    python bench/serving.py --echo --minimal-batcher --clients 1,64 --rounds 3
                                                    # + the design's ceiling (a bare batcher)
    python bench/serving.py --echo --minimal-batcher --sync-front-end --clients 64 --rounds 3
                                                    # + both on grpc's synchronous server
    python bench/serving.py --echo --clients 1,64 --rounds 3 \
        --echo-batching serving/batching.config,max64-20ms-1thr-nopad   # + a 20 ms timeout
    python bench/serving.py --cold-start --exclude digits_ddpm --concurrent-loads 1,2
                                                    # issue 7: shipped models ready, seconds
    python bench/serving.py --cold-start --concurrent-loads 2,2,2 --loaders signatures,saved_model
                                                    # issue 7: the two loaders, interleaved
    python bench/serving.py --decode-cost           # issue 7: request tensor decode, TF vs tfgen
    python bench/serving.py --call-cost --rounds 2  # issue 7: a model call's CPU, pools and XLA
    python bench/serving.py --sample-cost saved_models/digits_dcgan /tmp/new/digits_dcgan
                                                    # issue 9: a batched sample call's cost
    python bench/serving.py --load-time OLD_BASE saved_models/speech_wavenet --rounds 3
    python bench/serving.py --load-time saved_models/digits_conditional_glow \
        --loaders signatures,saved_model --rounds 3   # issue 7: a load, the two loaders
    python bench/serving.py --instantiations saved_models/digits_conditional_glow --rounds 5
                                                    # issue 7: quick vs optimized instantiation

Target (issue 3): at 64 clients, batching on serves >= 3x the requests/s of batching off.
Targets (issue 7): batch-1 log_prob on two_moons_nsf with batching on >= 0.7x the
requests/s of a minimal gRPC echo server (`--echo`); the shipped models ready in under
10 s (`--cold-start`).
"""

import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import queue
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_NAME = "digits_realnvp"
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"

_NOPAD = dict(max_batch_size=64, batch_timeout_micros=2000, max_enqueued_batches=100,
              num_batch_threads=2, allowed_batch_sizes=())
_PADDED = dict(_NOPAD, allowed_batch_sizes=(1, 2, 4, 8, 16, 32, 64))

#: Batching files, by name; `--batching` picks the main table's, `--tune` runs them all
#: at the largest client count.
BATCHING = {
    "max64-2ms-2thr-nopad": _NOPAD,
    "max64-2ms-2thr-padded": _PADDED,
    "max64-5ms-2thr-nopad": dict(_NOPAD, batch_timeout_micros=5000),
    "max64-2ms-1thr-nopad": dict(_NOPAD, num_batch_threads=1),
    "max64-5ms-1thr-nopad": dict(_NOPAD, batch_timeout_micros=5000, num_batch_threads=1),
    "max64-10ms-1thr-nopad": dict(_NOPAD, batch_timeout_micros=10000, num_batch_threads=1),
    "max64-20ms-1thr-nopad": dict(_NOPAD, batch_timeout_micros=20000, num_batch_threads=1),
    "max32-2ms-2thr-nopad": dict(_NOPAD, max_batch_size=32),
    "max16-2ms-2thr-padded": dict(_PADDED, max_batch_size=16, allowed_batch_sizes=(1, 2, 4, 8, 16)),
    "max64-0ms-2thr-padded": dict(_PADDED, batch_timeout_micros=0),
}
#: The settings of the shipped serving/batching.config.
DEFAULT_BATCHING = "max64-5ms-1thr-nopad"


# --- model and requests ------------------------------------------------------------------


def resolve_model(workdir, base_path=None):
    """(base_path, description): the shipped export, or a fresh one of the same config."""
    if base_path:
        return os.path.abspath(base_path), f"{base_path} (--model-base-path)"
    shipped = os.path.join(REPO, "saved_models", MODEL_NAME)
    versions = [d for d in os.listdir(shipped) if d.isdigit()] if os.path.isdir(shipped) else []
    if versions:
        return shipped, f"saved_models/{MODEL_NAME} (version {max(versions, key=int)})"
    import yaml

    from tfgen.export.saved_model import export_model
    from tfgen.models.base import get_model_class

    with open(os.path.join(REPO, "tf_configs", f"{MODEL_NAME}.yaml")) as f:
        config = yaml.safe_load(f)["model"]
    spec = {"event_shape": [8, 8, 1], "kind": "image", "levels": 17}
    model = get_model_class(config["class_name"])(data_spec=spec, **config["config"])
    base = os.path.join(workdir, MODEL_NAME)
    export_model(model, base, version=1)
    return base, (f"untrained {config['class_name']} {config['config']} exported to a temp dir "
                  f"(saved_models/{MODEL_NAME} absent)")


def signature_inputs(name):
    """Batch-1 inputs of the benchmark, as numpy arrays."""
    if name == "log_prob":
        from sklearn.datasets import load_digits

        return {"x": load_digits().images[:1, :, :, None].astype(np.float32)}
    return {"seed": np.zeros([1], np.int64), "temperature": np.ones([1], np.float32)}


def serialized_request(name, inputs, model=MODEL_NAME):
    from tensorflow_serving.apis import predict_pb2

    from tfgen.serving.tensors import ndarray_to_proto

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = name
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(ndarray_to_proto(value))
    return request.SerializeToString()


# --- load generators (spawned processes: grpcio only) -------------------------------------


def _load_process(address, request, clients, warmup, duration, ready, start_times, results):
    import asyncio

    import grpc

    async def main():
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_unary(PREDICT_METHOD)  # bytes in, bytes out
            await call(request, timeout=60)  # connected and answering
            ready.put(os.getpid())
            start = start_times.get()
            begin, end = start + warmup, start + warmup + duration
            latencies, errors, answered = [], [], [0]

            async def client():
                while time.time() < start:
                    await asyncio.sleep(0.001)
                while True:
                    t0 = time.time()
                    if t0 >= end:
                        return
                    try:
                        await call(request, timeout=30)
                        ok = True
                    except grpc.RpcError as e:
                        ok = False
                        code = e.code().name
                    t1 = time.time()
                    answered[0] += begin <= t1 <= end
                    if begin <= t0 and t1 <= end:
                        if ok:
                            latencies.append(t1 - t0)
                        else:
                            errors.append(code)

            await asyncio.gather(*(client() for _ in range(clients)))
            return latencies, errors, answered[0]

    results.put(asyncio.run(main()))


def cpu_seconds(pid):
    """User + system CPU seconds process `pid` has used (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mib(pid):
    """Resident memory of process `pid`, MiB, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


LOADERS = ("signatures", "saved_model")  # --loaders: tfgen serve's two ways to load


def loader_flag(loader):
    """The `tfgen serve` flag that picks `loader` (one of LOADERS)."""
    return f"--load_signatures_only={str(loader == 'signatures').lower()}"


def thread_cpu_seconds(pid):
    """{thread id: (thread name, user + system CPU seconds)} of process `pid`, from /proc."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def cpu_split(pid, before, after):
    """CPU seconds between two `thread_cpu_seconds` snapshots: the main thread (the
    event loop of tfgen serve and of the echo server), TensorFlow's thread pools (named
    tf_*), and every other thread (batch thread, gRPC's poller and event engine)."""
    split = {"loop": 0.0, "tensorflow": 0.0, "other": 0.0}
    for tid, (name, seconds) in after.items():
        used = seconds - before.get(tid, (name, 0.0))[1]
        part = "loop" if tid == str(pid) else "tensorflow" if name.startswith("tf_") else "other"
        split[part] += used
    return split


def drive(address, request, clients, load_processes, warmup, duration, server_pid=None):
    """Requests/s, p50, p99 (ms) and errors of `clients` concurrent clients; with
    `server_pid`, also the server's CPU milliseconds per request answered in the
    measured seconds (a figure that depends less on what else the machine runs), in
    all and split by `cpu_split`."""
    ctx = multiprocessing.get_context("spawn")
    procs_n = max(1, min(load_processes, clients))
    shares = [clients // procs_n + (i < clients % procs_n) for i in range(procs_n)]
    ready, start_times, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_load_process, daemon=True,
                         args=(address, request, n, warmup, duration, ready, start_times, results))
             for n in shares]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=120)
        start = time.time() + 0.2
        for _ in procs:
            start_times.put(start)
        cpu = None
        if server_pid:
            time.sleep(max(0.0, start + warmup - time.time()))
            cpu, threads = cpu_seconds(server_pid), thread_cpu_seconds(server_pid)
            time.sleep(max(0.0, start + warmup + duration - time.time()))
            cpu = cpu_seconds(server_pid) - cpu
            split = cpu_split(server_pid, threads, thread_cpu_seconds(server_pid))
        latencies, errors, answered = [], [], 0
        for _ in procs:
            lat, err, n = results.get(timeout=warmup + duration + 120)
            latencies += lat
            errors += err
            answered += n
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    cell = summarize(latencies, duration, errors)
    if cpu is not None:
        cell["cpu_ms_per_request"] = 1e3 * cpu / max(answered, 1)
        cell["cpu_split_ms"] = {k: 1e3 * v / max(answered, 1) for k, v in split.items()}
    return cell


def median(cells):
    """The cell with the median requests/s."""
    return sorted(cells, key=lambda cell: cell["rps"])[len(cells) // 2]


def summarize(latencies, duration, errors=()):
    lat = np.asarray(latencies) * 1e3
    return {
        "rps": len(lat) / duration,
        "p50": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p99": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
        "requests": int(len(lat)),
        "errors": len(errors),
        "error_codes": sorted(set(errors)),
        "loadavg": os.getloadavg()[0],
    }


# --- the server ---------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batching_file(params, path):
    lines = [f"max_batch_size {{ value: {params['max_batch_size']} }}",
             f"batch_timeout_micros {{ value: {params['batch_timeout_micros']} }}",
             f"max_enqueued_batches {{ value: {params['max_enqueued_batches']} }}",
             f"num_batch_threads {{ value: {params['num_batch_threads']} }}"]
    lines += [f"allowed_batch_sizes: {b}" for b in params.get("allowed_batch_sizes", ())]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class Server:
    """`python -m tfgen.cli serve` on free loopback ports; stopped with SIGTERM."""

    def __init__(self, base_path, batching_path=None, log_path=os.devnull, model=MODEL_NAME,
                 flags=(), tree=None):
        self.port, rest = free_port(), free_port()
        self.rest_url = f"http://127.0.0.1:{rest}"
        self.command = [sys.executable, "-m", "tfgen.cli", "serve", "--port", str(self.port),
                        "--rest_api_port", str(rest), "--model_name", model,
                        "--model_base_path", base_path, "--file_system_poll_wait_seconds", "0"]
        if batching_path:
            self.command += ["--enable_batching", "--batching_parameters_file", batching_path]
        self.command += list(flags)
        self._log = open(log_path, "w")
        # `tree`: another checkout's tfgen (an A/B of two commits in one run); `-m` puts
        # the working directory first on sys.path, ahead of the editable install.
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, cwd=tree or REPO)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout], daemon=True).start()
        deadline = time.time() + 300
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"server not ready in 300 s; see {log_path}") from None
            if "ready" in line:
                break
        self.address = f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --- the ceiling: an echo server --------------------------------------------------------


ECHO_MODEL = "two_moons_nsf"
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def _serve_predict(predict, port, ready, sync=False, threads=128):
    """Serve `predict` (PredictRequest -> response bytes) as TF Serving's Predict method on
    loopback `port`; puts True on `ready` once it listens. With grpc.aio, `predict` is a
    coroutine function; with `sync`, a plain function that grpc's synchronous server runs
    in a pool of `threads` (more than the bench's 64 clients, so none waits for a thread)."""
    import asyncio
    import concurrent.futures

    import grpc
    from tensorflow_serving.apis import predict_pb2

    handler = grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", {
        "Predict": grpc.unary_unary_rpc_method_handler(
            predict, request_deserializer=predict_pb2.PredictRequest.FromString,
            response_serializer=lambda b: b)})
    if sync:
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=threads))
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        ready.put(True)
        server.wait_for_termination()
        return

    async def main():
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.put(True)
        await server.wait_for_termination()

    asyncio.run(main())


def _echo_process(port, response, ready, sync=False):
    """A minimal server of the same Predict method and protos, no model: it parses each
    PredictRequest and answers a fixed PredictResponse (grpc.aio, or grpc's sync server)."""

    async def predict(request, context):
        return response

    _serve_predict((lambda request, context: response) if sync else predict, port, ready, sync)


def _minimal_batcher_process(port, version_dir, ready, counts, sync=False, max_rows=64,
                             timeout_s=0.005):
    """The least a Python server of tfgen serve's design does for batch-1 log_prob: a
    grpc.aio handler that decodes `x`, queues it, and awaits one batch thread that joins
    up to `max_rows` rows (at most `timeout_s` after the first of them arrived, as
    serving/batching.config and TF Serving), calls the same signature once and answers
    each request its rows of every output. No checks, metrics, deadlines or model
    management: tfgen serve's ratio to it is the cost of those, its ratio to the echo
    server the cost of the design (threads, TensorFlow). With `sync`, grpc's synchronous
    server instead: each request's pool thread blocks until its batch has run, no event
    loop. `counts` (a shared array) accumulates rows run and batches run."""
    import asyncio
    import concurrent.futures
    import threading

    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    model = tf.saved_model.load(version_dir)  # kept: the signature uses its variables
    log_prob = model.signatures["log_prob"]
    log_prob(x=tf.zeros([1, 2]))
    pending = queue.Queue()

    def batch_thread():
        while True:
            batch = [pending.get()]
            end = batch[0][2] + timeout_s
            while len(batch) < max_rows:
                left = end - time.monotonic()
                try:  # what queued while the last batch ran joins this one at once
                    batch.append(pending.get(timeout=left) if left > 0 else pending.get_nowait())
                except queue.Empty:
                    break
            x = np.concatenate([row for row, _, _ in batch])
            outputs = {k: v.numpy() for k, v in log_prob(x=tf.constant(x)).items()}
            counts[0] += len(batch)
            counts[1] += 1
            for i, (_, future, _) in enumerate(batch):
                future.set_result({k: v[i:i + 1] for k, v in outputs.items()})

    threading.Thread(target=batch_thread, daemon=True).start()

    def queued(request):
        proto = request.inputs["x"]
        row = np.array(proto.float_val, np.float32).reshape([d.size for d in proto.tensor_shape.dim])
        future = concurrent.futures.Future()
        pending.put((row, future, time.monotonic()))
        return future

    def response_bytes(outputs):
        response = predict_pb2.PredictResponse()  # every output, as tfgen serve answers
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response.SerializeToString()

    async def predict(request, context):
        return response_bytes(await asyncio.wrap_future(queued(request)))

    def predict_sync(request, context):
        return response_bytes(queued(request).result())

    _serve_predict(predict_sync if sync else predict, port, ready, sync)


def batch_rows(rest_url):
    """(rows run, batches run) so far, from a server's processed_batch_size metric."""
    import urllib.request

    with urllib.request.urlopen(f"{rest_url}{PROMETHEUS_PATH}", timeout=30) as page:
        text = page.read().decode()
    totals = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for kind in totals:
            if line.startswith(f":tensorflow:serving:batching_session:processed_batch_size_{kind}"):
                totals[kind] += float(line.split()[-1])
    return totals["sum"], totals["count"]


def echo_ratio(args):
    """Batch-1 log_prob on the shipped two_moons_nsf at each `--clients` count: tfgen
    serve with batching on (each `--echo-batching` file) and off, against the echo server
    answering the same response bytes; `--rounds` interleaved rounds, median kept."""
    import grpc
    from tensorflow_serving.apis import predict_pb2

    from tfgen.export.reader import resolve_version

    base = os.path.join(REPO, "saved_models", ECHO_MODEL)
    request = serialized_request("log_prob", {"x": np.array([[0.5, 0.25]], np.float32)}, ECHO_MODEL)
    client_counts = [int(c) for c in args.clients.split(",")]
    batching_files = args.echo_batching.split(",")
    trees = [os.path.abspath(t) for t in args.compare_tree.split(",") if t]
    load_before = os.getloadavg()
    flags = shlex.split(args.server_flags)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        monitoring = os.path.join(tmp, "monitoring.config")
        with open(monitoring, "w") as f:
            f.write(f'prometheus_config {{ enable: true path: "{PROMETHEUS_PATH}" }}\n')
        flags += ["--monitoring_config_file", monitoring]
        def loader_flags(loader):
            return flags + [loader_flag(loader)]

        def labelled(text, loader):
            return f"{text}, {loader} loader" if len(args.loaders) > 1 else text

        offs = [(loader, stack.enter_context(Server(base, None, os.devnull, model=ECHO_MODEL,
                                                    flags=loader_flags(loader))))
                for loader in args.loaders]
        with grpc.insecure_channel(offs[0][1].address) as channel:
            response = channel.unary_unary(PREDICT_METHOD)(request, timeout=30)
        predict_pb2.PredictResponse.FromString(response)  # a real answer
        ctx = multiprocessing.get_context("spawn")
        servers = []
        front_ends = [False, True] if args.sync_front_end else [False]
        for sync in front_ends:
            ready, port = ctx.Queue(), free_port()
            echo = ctx.Process(target=_echo_process, args=(port, response, ready, sync), daemon=True)
            echo.start()
            stack.callback(echo.kill)
            ready.get(timeout=60)
            servers.append(("echo sync" if sync else "echo",
                            f"echo server{', sync' if sync else ''} (same protos, no model)",
                            f"127.0.0.1:{port}", echo.pid, None))
        for sync in front_ends if args.minimal_batcher else []:
            ready, port = ctx.Queue(), free_port()
            version = resolve_version(base)
            counts = ctx.Array("d", 2)
            minimal = ctx.Process(target=_minimal_batcher_process,
                                  args=(port, version, ready, counts, sync), daemon=True)
            minimal.start()
            stack.callback(minimal.kill)
            ready.get(timeout=120)
            servers.append(("minimal sync" if sync else "minimal",
                            f"minimal batcher{', sync' if sync else ''} (same signature, 64 rows, 5 ms)",
                            f"127.0.0.1:{port}", minimal.pid,
                            functools.partial(tuple, counts)))
        for entry in batching_files:
            if entry in BATCHING:
                path, label = batching_file(BATCHING[entry], os.path.join(tmp, entry)), entry
            else:
                path, label = os.path.abspath(entry), os.path.relpath(entry, REPO)
            for loader in args.loaders:
                for tree in [None] + trees:
                    on = stack.enter_context(Server(base, path, os.devnull, model=ECHO_MODEL,
                                                    flags=loader_flags(loader), tree=tree))
                    where = f", code of {tree}" if tree else ""
                    servers.append((labelled(f"on {label}{where}", loader),
                                    labelled(f"tfgen serve, batching on ({label}){where}", loader),
                                    on.address, on.proc.pid, functools.partial(batch_rows, on.rest_url)))
        for loader, off in offs:
            servers.append((labelled("off", loader), labelled("tfgen serve, batching off", loader),
                            off.address, off.proc.pid, None))
        cells = {}  # (mode, clients) -> [cell per round]
        for clients in client_counts:
            for r in range(args.rounds):
                for mode, _, address, pid, rows_so_far in servers:
                    before = rows_so_far() if rows_so_far else None
                    cell = drive(address, request, clients, args.load_processes, args.warmup,
                                 args.duration, server_pid=pid)
                    if before:
                        rows, batches = (a - b for a, b in zip(rows_so_far(), before))
                        cell["batch_rows"] = rows / max(batches, 1)
                    cells.setdefault((mode, clients), []).append(cell)
                    rows_text = (f", {cell['batch_rows']:.1f} rows a batch"
                                 if "batch_rows" in cell else "")
                    split = ", ".join(f"{k} {v:.3f}" for k, v in cell["cpu_split_ms"].items())
                    print(f"  round {r} {mode:30s} {clients:3d} clients: {fmt(cell)}, server CPU "
                          f"{cell['cpu_ms_per_request']:.3f} ms/request ({split}){rows_text}",
                          flush=True)
    print()
    print(f"command: python bench/serving.py {' '.join(sys.argv[1:])}")
    print(f"machine: {os.cpu_count()} CPUs; load average (1/5/15 min) before "
          f"{'/'.join(f'{x:.1f}' for x in load_before)}, after "
          f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"median of {args.rounds} interleaved round(s)")
    print("| server | clients | req/s p50 p99 (ms) | / echo | server CPU ms per request | / echo "
          "| of which loop, TF pools, other | rows a batch |")
    print("|---|---|---|---|---|---|---|---|")
    for clients in client_counts:
        echo_cell = median(cells[("echo", clients)])
        for mode, label, *_ in servers:
            cell = median(cells[(mode, clients)])
            cpu = statistics.median(c["cpu_ms_per_request"] for c in cells[(mode, clients)])
            echo_cpu = statistics.median(c["cpu_ms_per_request"] for c in cells[("echo", clients)])
            rows = (f"{statistics.median(c['batch_rows'] for c in cells[(mode, clients)]):.1f}"
                    if "batch_rows" in cell else "")
            split = ", ".join(
                f"{statistics.median(c['cpu_split_ms'][k] for c in cells[(mode, clients)]):.3f}"
                for k in cell["cpu_split_ms"])
            print(f"| {label} | {clients} | {fmt(cell)} | {cell['rps'] / echo_cell['rps']:.2f}x | "
                  f"{cpu:.3f} | {cpu / echo_cpu:.2f}x | {split} | {rows} |")
    top = max(client_counts)
    first_on = next(mode for mode, *_ in servers if mode.startswith("on "))
    ratio = median(cells[(first_on, top)])["rps"] / median(cells[("echo", top)])["rps"]
    print(f"target (batching on, {first_on[3:]}, {top} clients, >= 0.7x echo): "
          f"{ratio:.3f}x, {'met' if ratio >= 0.7 else 'NOT met'}")


# --- cold start ---------------------------------------------------------------------------


def _load_log(path):
    """(wall time of the first "Loading servable" line, {model: load seconds}) from a
    `tfgen serve` log (asctime-stamped lines, as tfgen.serving.cli configures them)."""
    import datetime
    import re

    first, seconds = None, {}
    with open(path) as f:
        for line in f:
            stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", line)
            if stamp and first is None and "Loading servable" in line:
                first = datetime.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            done = re.search(r"Successfully loaded servable version \{name: (\S+) version: \d+\} "
                             r"in ([0-9.]+)s", line)
            if done:
                seconds[done.group(1)] = float(done.group(2))
    return first, seconds


def _wait_optimized(log_path, pid, start, quick, timeout=300):
    """(seconds since `start`, server CPU s) when every version warmed up `quick` has
    logged its switch to the optimized instantiation; (nan, nan) if none did or
    `timeout` passed."""
    deadline = time.monotonic() + timeout
    while quick and time.monotonic() < deadline:
        with open(log_path) as f:
            text = f.read()
        warmed = text.count("Finished reading warmup data")
        if not warmed:
            break
        if text.count("Optimized servable version") >= warmed:
            return time.monotonic() - start, cpu_seconds(pid)
        time.sleep(0.1)
    return float("nan"), float("nan")


def _models_config(workdir, exclude):
    """serving/models.config, or a copy without the `exclude`d models (absolute paths)."""
    if not exclude:
        return "serving/models.config"
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    with open(os.path.join(REPO, "serving", "models.config")) as f:
        text_format.Parse(f.read(), config)
    unknown = set(exclude) - {c.name for c in config.model_config_list.config}
    if unknown:
        raise SystemExit(f"--exclude: no shipped model named {', '.join(sorted(unknown))}")
    kept = [c for c in config.model_config_list.config if c.name not in exclude]
    del config.model_config_list.config[:]
    for model in kept:
        model.base_path = os.path.join(REPO, model.base_path)
        config.model_config_list.config.add().CopyFrom(model)
    path = os.path.join(workdir, "models.config")
    with open(path, "w") as f:
        f.write(text_format.MessageToString(config))
    return path


def cold_start(args):
    """Seconds from `tfgen serve --model_config_file serving/models.config` (the shipped
    models, batching on as `make serve`) to its ready line, loading one model at a time
    and concurrently, split into start-up (imports, flags: process start to the first
    "Loading servable" line) and the loads; and each model's load + warmup seconds.
    With several `--loaders`, each --max_concurrent_loads value runs once with each."""
    load_before = os.getloadavg()
    rows = []
    workdir = tempfile.mkdtemp(prefix="tfgen-bench-cold-")
    try:
        models_config = _models_config(workdir, [n for n in args.exclude.split(",") if n])
        runs = [(int(n), loader) for n in args.concurrent_loads.split(",")
                for loader in args.loaders]
        for run, (loads, loader) in enumerate(runs):
            command = [sys.executable, "-m", "tfgen.cli", "serve", "--port", str(free_port()),
                       "--rest_api_port", str(free_port()), "--model_config_file",
                       models_config, "--enable_batching", "--batching_parameters_file",
                       "serving/batching.config", "--max_concurrent_loads", str(loads),
                       loader_flag(loader)]
            command += shlex.split(args.server_flags)
            log_path = os.path.join(workdir, f"serve-{run}.log")
            with open(log_path, "w") as log:
                wall, start = time.time(), time.monotonic()
                proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=log,
                                        text=True)
                for line in proc.stdout:
                    if line.startswith("tfgen serve: ready"):
                        break
                seconds = time.monotonic() - start
                cpu, rss = cpu_seconds(proc.pid), resident_mib(proc.pid)
                optimized = _wait_optimized(log_path, proc.pid, start,
                                            "--quick_warmup=false" not in args.server_flags)
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            first, per_model = _load_log(log_path)
            startup = first - wall if first else float("nan")
            rows.append((f"{loads}, {loader}", seconds, startup, per_model, os.getloadavg()[0],
                         cpu, optimized, rss))
            print(f"  --max_concurrent_loads {loads}, {loader} loader: ready in {seconds:.1f} s (start-up "
                  f"{startup:.1f} s, {len(per_model)} models, {cpu:.1f} CPU s); all optimized "
                  f"{optimized[0]:.1f} s ({optimized[1]:.1f} CPU s)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"command: python bench/serving.py {' '.join(sys.argv[1:])}")
    print(f"machine: {os.cpu_count()} CPUs; load average before "
          f"{'/'.join(f'{x:.1f}' for x in load_before)}")
    print("| models loading at once, loader | process start to ready line | start-up (imports) "
          "| loads | sum of per-model loads | server CPU s to ready | RSS at ready "
          "| all optimized (CPU s) | load average |")
    print("|---|---|---|---|---|---|---|---|---|")
    for loads, seconds, startup, per_model, load, cpu, optimized, rss in rows:
        print(f"| {loads} | {seconds:.1f} s | {startup:.1f} s | {seconds - startup:.1f} s "
              f"| {sum(per_model.values()):.1f} s ({len(per_model)} models) | {cpu:.1f} s "
              f"| {rss:.0f} MiB | {optimized[0]:.1f} s ({optimized[1]:.1f}) | {load:.1f} |")
    print()
    names = sorted({name for row in rows for name in row[3]})
    print("| model (load + warmup, s) | " + " | ".join(r[0] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{r[3].get(name, float('nan')):.1f}" for r in rows) + " |")


# --- one model's load time -----------------------------------------------------------------

_LOAD_ONE = """
import json, sys, time
from tfgen.export.reader import resolve_version
from tfgen.serving.model_manager import Servable
from tfgen.serving.signatures import InputLimits
signatures_only = sys.argv[3] == "signatures"
first = Servable("first", 1, resolve_version(sys.argv[2]), InputLimits(), signatures_only)
first.warmup(quick=True)  # TensorFlow's one-time set-up
path = resolve_version(sys.argv[1])
start, start_cpu = time.monotonic(), time.process_time()
servable = Servable("timed", 1, path, InputLimits(), signatures_only)
loaded, loaded_cpu = time.monotonic(), time.process_time()
records = servable.warmup(quick=True)
print(json.dumps([loaded - start, loaded_cpu - start_cpu, time.monotonic() - loaded,
                  time.process_time() - loaded_cpu, records]))
"""


def load_times(args):
    """Seconds (wall and CPU) to load each export of `--load-time` as the server does
    with each of `--loaders` (the load, then the warmup replay on the quick
    instantiation), each in a fresh process after a small model has paid TensorFlow's
    one-time set-up; interleaved rounds, median."""
    first = os.path.join(REPO, "saved_models", "eight_gaussians_wgan_gp")
    load_before = os.getloadavg()
    times = {(base, loader): [] for base in args.load_time for loader in args.loaders}
    for _ in range(args.rounds):
        for base, loader in times:
            out = subprocess.run([sys.executable, "-c", _LOAD_ONE, base, first, loader],
                                 cwd=REPO, capture_output=True, text=True, check=True).stdout
            times[base, loader].append(json.loads(out.strip().splitlines()[-1]))
    print(f"command: python bench/serving.py {' '.join(sys.argv[1:])}")
    print(f"machine: {os.cpu_count()} CPUs; load average before "
          f"{'/'.join(f'{x:.1f}' for x in load_before)}, after "
          f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}; median of {args.rounds} rounds")
    print("| export | loader | load, wall / CPU s | warmup replay, wall / CPU s | total wall "
          "| warmup records |")
    print("|---|---|---|---|---|---|")
    for (base, loader), rows in times.items():
        load, load_cpu, warm, warm_cpu = (float(np.median([r[i] for r in rows])) for i in range(4))
        print(f"| {base} | {loader} | {load:.2f} / {load_cpu:.2f} | {warm:.2f} / {warm_cpu:.2f} "
              f"| {load + warm:.2f} s | {rows[0][4]} |")


# --- the quick and the optimized instantiation of one export ------------------------------

_INSTANTIATIONS = """
import json, sys, time
import numpy as np
import tensorflow as tf
from tfgen.export.reader import resolve_version
from tfgen.serving.instantiation import quick_and_optimized
from tfgen.serving.model_manager import Servable
from tfgen.serving.signatures import InputLimits
first = Servable("first", 1, resolve_version(sys.argv[2]), InputLimits())  # TensorFlow's one-time set-up
first.warmup()
path, rows, rounds = resolve_version(sys.argv[1]), int(sys.argv[3]), int(sys.argv[4])
def cpu(run):
    start = time.process_time()
    run()
    return time.process_time() - start
servable = Servable("timed", 1, path, InputLimits())
out = {"quick warmup": cpu(lambda: servable.warmup(quick=True)), "optimize": cpu(servable.optimize)}
reference = Servable("reference", 1, path, InputLimits())  # as before --quick_warmup
out["optimized warmup"] = cpu(reference.warmup)
quick, optimized = quick_and_optimized()
out["ms"] = {}
for request in servable.warmup_requests():
    name = request.model_spec.signature_name
    signature = servable.signature(name)
    inputs = signature.decode_request_inputs(request.inputs, servable.limits)
    feeds = {k: tf.constant(np.repeat(v, rows, axis=0) if v.ndim else v) for k, v in inputs.items()}
    calls = [lambda: signature.function.call_with(quick, feeds),
             lambda: signature.function.call_with(optimized, feeds),
             lambda: reference.signature(name).function(**feeds)]
    times = [[] for _ in calls]
    for call in calls:
        call()
    for _ in range(rounds):
        for call, cell in zip(calls, times):
            start = time.monotonic()
            call()
            cell.append(1000 * (time.monotonic() - start))
    out["ms"][name] = [float(np.median(cell)) for cell in times]
print(json.dumps(out))
"""


def instantiation_cost(args):
    """Per export of `--instantiations`: CPU s of its warmup on the quick instantiation,
    of the background `optimize()`, and of the warmup a server without the quick step
    runs; then ms per `--rows`-row call of each warmed signature on the quick
    instantiation, on the optimized one, and on a separately loaded copy warmed the old
    way (steady state before and after the switch, and before this change). Each export
    in a fresh process after a small model paid TensorFlow's one-time set-up; calls
    interleaved over `--rounds` rounds, median."""
    first = os.path.join(REPO, "saved_models", "eight_gaussians_wgan_gp")
    load_before = os.getloadavg()
    print(f"command: python bench/serving.py {' '.join(sys.argv[1:])}")
    print("| export | quick warmup CPU s | optimize CPU s (after ready) | optimized warmup "
          "CPU s (before) | signature: ms per call quick / optimized / before |")
    print("|---|---|---|---|---|")
    for base in args.instantiations:
        out = subprocess.run([sys.executable, "-c", _INSTANTIATIONS, base, first, str(args.rows),
                              str(args.rounds)], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        calls = ", ".join(f"{name} {q:.1f} / {o:.1f} / {r:.1f}"
                          for name, (q, o, r) in sorted(row["ms"].items()))
        print(f"| {os.path.basename(base.rstrip('/'))} | {row['quick warmup']:.2f} "
              f"| {row['optimize']:.2f} | {row['optimized warmup']:.2f} | {calls} |", flush=True)
    print(f"machine: {os.cpu_count()} CPUs; load average before "
          f"{'/'.join(f'{x:.1f}' for x in load_before)}, after "
          f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}; {args.rows}-row calls, median "
          f"of {args.rounds} rounds")


# --- cost of decoding a request's tensors ------------------------------------------------


def decode_cost(args):
    """Microseconds per TensorProto decode, `tf.make_ndarray` vs tfgen's
    `proto_to_ndarray` (its checks included), for the --echo request (batch-1 x of
    two_moons_nsf, typed float_val) and 64 digits rows (tensor_content), one run."""
    import tensorflow as tf

    from tfgen.serving.tensors import ndarray_to_proto, proto_to_ndarray

    digits = signature_inputs("log_prob")["x"]
    protos = {
        "batch-1 [1,2] float_val (the --echo request)":
            ndarray_to_proto(np.array([[0.5, 0.25]], np.float32)),
        "64 digits [64,8,8,1] tensor_content": tf.make_tensor_proto(np.repeat(digits, 64, 0)),
    }
    rounds = 2000
    print(f"command: python bench/serving.py {' '.join(sys.argv[1:])}")
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; median of 5 "
          f"runs of {rounds} decodes")
    print("| request tensor | tf.make_ndarray (us) | tfgen proto_to_ndarray (us) | ratio |")
    print("|---|---|---|---|")
    for label, proto in protos.items():
        times = {}
        for name, fn in (("tf", tf.make_ndarray), ("tfgen", proto_to_ndarray)):
            runs = []
            for _ in range(5):
                start = time.process_time()
                for _ in range(rounds):
                    fn(proto)
                runs.append((time.process_time() - start) / rounds * 1e6)
            times[name] = float(np.median(runs))
        print(f"| {label} | {times['tf']:.1f} | {times['tfgen']:.1f} | "
              f"{times['tf'] / times['tfgen']:.1f}x |")


# --- cost of one batched sample call ------------------------------------------------------


def print_command_and_load(load_before):
    """The reproducing command, and the load average before the run and now."""
    print(f"command: python bench/serving.py {' '.join(sys.argv[1:])}")
    print(f"machine: {os.cpu_count()} CPUs; load average before "
          f"{'/'.join(f'{x:.1f}' for x in load_before)}, after "
          f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}")


def sample_call_cost(args):
    """Milliseconds per in-process call of `sample` at batch 1 and 64 for each export
    of `--sample-cost` (interleaved rounds, median), and the per-row cost ratio: what
    batching can gain at best. Compares e.g. a shipped export (per-row draws in a
    tf.map_fn) with its re-export by today's code (tools/reexport_shipped.py --out)."""
    import tensorflow as tf

    from tfgen.export.reader import resolve_version

    fns = {}
    for base in args.sample_cost:
        fn = tf.saved_model.load(resolve_version(base)).signatures["sample"]
        fns[base] = fn
    inputs = {}
    for rows in (1, 64):
        inputs[rows] = {"seed": tf.range(rows, dtype=tf.int64), "temperature": tf.ones([rows])}
    times = {(base, rows): [] for base in fns for rows in inputs}
    load_before = os.getloadavg()
    for _ in range(args.rounds * 5):
        for base, fn in fns.items():
            for rows, kwargs in inputs.items():
                fn(**kwargs)  # first call of the round pays nothing extra
                start = time.perf_counter()
                for _ in range(5):
                    fn(**kwargs)
                times[(base, rows)].append((time.perf_counter() - start) / 5 * 1e3)
    print_command_and_load(load_before)
    print("| export | ms per call, 1 row | ms per call, 64 rows | 64-row call / 64 one-row calls |")
    print("|---|---|---|---|")
    for base in fns:
        one, many = (float(np.median(times[(base, rows)])) for rows in (1, 64))
        print(f"| {base} | {one:.2f} | {many:.2f} | {many / (64 * one):.3f} |")


CALL_COST_VARIANTS = {
    "graph": "TensorFlow's defaults (what tfgen serve runs)",
    "no spinning": "ConfigProto.experimental.disable_thread_spinning",
    "pools 1/1": "intra- and inter-op pools of one thread each",
    "XLA": "tf.function(jit_compile=True) around the signature",
}


def _call_cost_process(variant, version_dir, calls, results):
    """CPU and wall ms per in-process call of `log_prob` at 1, 8 and 64 rows, in a
    process of its own: the thread pools are made once, when TensorFlow's context starts."""
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    if variant == "no spinning":  # no tf.config setter; must precede the first op
        config = config_pb2.ConfigProto()
        config.experimental.disable_thread_spinning = True
        context.context()._config = config
    elif variant == "pools 1/1":
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    model = tf.saved_model.load(version_dir)  # kept: the signature uses its variables
    fn = model.signatures["log_prob"]
    if variant == "XLA":
        fn = tf.function(lambda **feeds: model.signatures["log_prob"](**feeds), jit_compile=True)
    out = {}
    for rows in (1, 8, 64):
        x = tf.random.stateless_normal([rows, 2], seed=[0, rows])
        start = time.perf_counter()
        fn(x=x)  # XLA compiles each batch size once
        first = time.perf_counter() - start
        for _ in range(10):
            fn(x=x)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn(x=x)
        out[rows] = (1e3 * (time.process_time() - cpu) / calls, 1e3 * (time.perf_counter() - wall) / calls,
                     first)
    results.put(out)


def call_cost(args):
    """CPU ms per in-process call of the echo model's `log_prob` under each of
    CALL_COST_VARIANTS, one fresh process per variant and round, rounds interleaved."""
    from tfgen.export.reader import resolve_version

    base = os.path.join(REPO, "saved_models", ECHO_MODEL)
    version = resolve_version(base)
    ctx = multiprocessing.get_context("spawn")
    load_before = os.getloadavg()
    got = {variant: [] for variant in CALL_COST_VARIANTS}
    for _ in range(args.rounds):
        for variant in CALL_COST_VARIANTS:
            results = ctx.Queue()
            proc = ctx.Process(target=_call_cost_process, args=(variant, version, 300, results))
            proc.start()
            while True:
                try:
                    got[variant].append(results.get(timeout=5))
                    break
                except queue.Empty:
                    if not proc.is_alive():
                        raise RuntimeError(f"--call-cost: the {variant!r} process failed "
                                           f"(exit code {proc.exitcode}); see its traceback above") from None
            proc.join(timeout=60)
    print_command_and_load(load_before)
    print(f"{ECHO_MODEL} log_prob in process, 300 calls a batch size, median of {args.rounds} round(s)")
    print("| variant | CPU ms per call, 1 / 8 / 64 rows | wall ms per call | first call (s) |")
    print("|---|---|---|---|")
    for variant, label in CALL_COST_VARIANTS.items():
        cells = [" / ".join(f"{statistics.median(r[rows][i] for r in got[variant]):.2f}" for rows in (1, 8, 64))
                 for i in range(3)]
        print(f"| {variant} ({label}) | {cells[0]} | {cells[1]} | {cells[2]} |")


# --- in-process ---------------------------------------------------------------------------


def in_process(base_path, name, inputs, clients, warmup, duration):
    """The signature called by `clients` threads of this process (batch 1 each)."""
    import tensorflow as tf

    from tfgen.export.reader import resolve_version

    fn = tf.saved_model.load(resolve_version(base_path)).signatures[name]
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    fn(**tensors)
    start = time.time() + 0.1
    begin, end = start + warmup, start + warmup + duration
    per_thread = [[] for _ in range(clients)]

    def worker(out):
        while time.time() < start:
            time.sleep(0.001)
        while True:
            t0 = time.time()
            if t0 >= end:
                return
            {k: v.numpy() for k, v in fn(**tensors).items()}
            t1 = time.time()
            if begin <= t0 and t1 <= end:
                out.append(t1 - t0)

    threads = [threading.Thread(target=worker, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarize([x for out in per_thread for x in out], duration)


# --- the table ----------------------------------------------------------------------------


def fmt(cell):
    if cell is None:
        return "-"
    text = f"{cell['rps']:7.0f} {cell['p50']:6.1f} {cell['p99']:6.1f}"
    return text + (f" ({cell['errors']} err)" if cell.get("errors") else "")


def table(rows):
    head = ("| signature | clients | in-process req/s p50 p99 | batching off req/s p50 p99 "
            "| batching on req/s p50 p99 | on/off |")
    out = [head, "|" + "---|" * 6]
    for r in rows:
        ratio = r["on"]["rps"] / r["off"]["rps"] if r["off"]["rps"] else float("nan")
        out.append(f"| {r['signature']} | {r['clients']} | {fmt(r['inproc'])} | {fmt(r['off'])} "
                   f"| {fmt(r['on'])} | {ratio:.2f}x |")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per cell")
    parser.add_argument("--clients", default="1,8,64", help="concurrent clients, comma-separated")
    parser.add_argument("--signatures", default="log_prob,sample")
    parser.add_argument("--load-processes", type=int, default=2,
                        help="load-generator processes (clients are shared among them)")
    parser.add_argument("--tune", action="store_true",
                        help="also run every other BATCHING file at the largest client count")
    parser.add_argument("--batching", default=DEFAULT_BATCHING, choices=sorted(BATCHING),
                        help=f"batching file of the main table (default {DEFAULT_BATCHING})")
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved off/on measurements per cell (median kept)")
    parser.add_argument("--json", metavar="PATH", help="write all results as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 and 64 clients, 1 s cells (bench/run_all.py --quick)")
    parser.add_argument("--model-base-path", metavar="DIR",
                        help=f"serve this export as {MODEL_NAME} instead (default: the shipped one)")
    parser.add_argument("--echo", action="store_true",
                        help=f"only the ceiling: {ECHO_MODEL} log_prob against a gRPC echo server")
    parser.add_argument("--echo-batching", default=os.path.join(REPO, "serving", "batching.config"),
                        metavar="FILE|NAME[,...]",
                        help="--echo: batching files or BATCHING names, one batching-on server "
                             "each, measured in turn with the echo server (default "
                             "serving/batching.config); the first is the target's")
    parser.add_argument("--compare-tree", default="", metavar="DIR,DIR",
                        help="--echo: also run each batching-on server from these checkouts' "
                             "tfgen (e.g. a `git worktree` of the commit before a change), "
                             "interleaved with this tree's")
    parser.add_argument("--minimal-batcher", action="store_true",
                        help="--echo: also a minimal Python batcher around the same signature "
                             "(decode, queue, one batched call, encode; nothing else), the "
                             "ceiling of tfgen serve's design")
    parser.add_argument("--sync-front-end", action="store_true",
                        help="--echo: also the echo server (and with --minimal-batcher the "
                             "minimal batcher) on grpc's synchronous server, a thread a request")
    parser.add_argument("--cold-start", action="store_true",
                        help="only the time until the shipped models are ready")
    parser.add_argument("--concurrent-loads", default="1,2,4", metavar="N,N",
                        help="--cold-start: the server's --max_concurrent_loads values to time")
    parser.add_argument("--server-flags", default="", metavar="'FLAGS'",
                        help="--echo, --cold-start: more `tfgen serve` flags, e.g. "
                             "'--enable_batching --batching_parameters_file F' (--echo: "
                             "then both of its tfgen servers batch with F)")
    parser.add_argument("--exclude", default="", metavar="NAME,NAME",
                        help="--cold-start: shipped models to leave out of serving/models.config")
    parser.add_argument("--loaders", default="signatures",
                        help="--cold-start, --load-time, --echo: the server's loaders to time, comma-separated: "
                             "signatures (--load_signatures_only, the default), saved_model "
                             "(tf.saved_model.load)")
    parser.add_argument("--decode-cost", action="store_true",
                        help="only the CPU cost of decoding request tensors, TF's vs tfgen's")
    parser.add_argument("--call-cost", action="store_true",
                        help=f"only {ECHO_MODEL} log_prob's CPU per in-process call under TensorFlow's "
                             "defaults, without thread spinning, with one-thread pools and under XLA")
    parser.add_argument("--sample-cost", nargs="+", metavar="BASE",
                        help="only the in-process cost of sample at 1 and 64 rows, per export")
    parser.add_argument("--instantiations", nargs="+", metavar="BASE",
                        help="quick vs optimized instantiation: warmup CPU and ms per call "
                             "of each export (issue 7)")
    parser.add_argument("--rows", type=int, default=64, help="--instantiations: rows per call")
    parser.add_argument("--load-time", nargs="+", metavar="BASE",
                        help="only the load + warmup seconds of each export, as the server loads it")
    args = parser.parse_args(argv)
    args.loaders = args.loaders.split(",")
    unknown = set(args.loaders) - set(LOADERS)
    if unknown:
        parser.error(f"--loaders: unknown {', '.join(sorted(unknown))} ({', '.join(LOADERS)})")
    if args.load_time:
        return load_times(args)
    if args.instantiations:
        return instantiation_cost(args)
    if args.decode_cost:
        return decode_cost(args)
    if args.call_cost:
        return call_cost(args)
    if args.sample_cost:
        return sample_call_cost(args)
    if args.echo:
        return echo_ratio(args)
    if args.cold_start:
        return cold_start(args)
    if args.quick:
        args.duration, args.warmup, args.clients = 1.0, 0.5, "1,64"
    clients = [int(c) for c in args.clients.split(",")]
    signatures = args.signatures.split(",")

    workdir = tempfile.mkdtemp(prefix="tfgen-bench-serving-")
    try:
        started = time.time()
        load_before = os.getloadavg()
        base_path, model_desc = resolve_model(workdir, args.model_base_path)
        print(f"model: {model_desc}", flush=True)
        requests = {s: signature_inputs(s) for s in signatures}
        serialized = {s: serialized_request(s, v) for s, v in requests.items()}
        rows = {(s, c): {"signature": s, "clients": c} for s in signatures for c in clients}

        # The unbatched server stays up; each batching server is measured cell by cell
        # right after the unbatched one (off, on, off, on, ... for --rounds), so the load
        # of the machine drifts as little as possible between the two halves of a ratio.
        configs = [args.batching] + ([n for n in BATCHING if n != args.batching] if args.tune else [])
        tuning = []
        with Server(base_path, None, os.path.join(workdir, "server-off.log")) as off:
            for name in configs:
                path = batching_file(BATCHING[name], os.path.join(workdir, f"on-{len(tuning)}.config"))
                with Server(base_path, path, os.path.join(workdir, f"server-{len(tuning)}.log")) as on:
                    cells = [(s, c) for s in signatures for c in clients]
                    if name != args.batching:
                        cells = [(s, max(clients)) for s in signatures]
                    for s, c in cells:
                        got = {"off": [], "on": []}
                        for _ in range(args.rounds):
                            for mode, server in (("off", off), ("on", on)):
                                got[mode].append(drive(server.address, serialized[s], c,
                                                       args.load_processes, args.warmup,
                                                       args.duration))
                        if args.rounds > 1:
                            print(f"  {name:32s} {s:8s} {c:3d} clients, rounds: off req/s "
                                  f"{[round(x['rps']) for x in got['off']]}, on req/s "
                                  f"{[round(x['rps']) for x in got['on']]}", flush=True)
                        cell = {mode: median(v) for mode, v in got.items()}
                        ratio = cell["on"]["rps"] / max(cell["off"]["rps"], 1e-9)
                        print(f"  {name:32s} {s:8s} {c:3d} clients: off {fmt(cell['off'])} | "
                              f"on {fmt(cell['on'])} | {ratio:.2f}x", flush=True)
                        if name == args.batching:
                            rows[(s, c)].update(cell)
                        if c == max(clients):
                            tuning.append({"name": name, "params": BATCHING[name], "signature": s,
                                           "clients": c, "ratio": ratio, **cell})
        for s in signatures:
            for c in clients:
                cell = in_process(base_path, s, requests[s], c, args.warmup, args.duration)
                rows[(s, c)]["inproc"] = cell
                print(f"  in-process {s:8s} {c:3d} threads: {fmt(cell)}", flush=True)

        rows = list(rows.values())
        print()
        print(f"command: python bench/serving.py {' '.join(argv if argv is not None else sys.argv[1:])}")
        print(f"machine: {os.cpu_count()} CPUs; load average (1/5/15 min) before "
              f"{'/'.join(f'{x:.1f}' for x in load_before)}, after "
              f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}; {time.time() - started:.0f} s")
        print(f"batching on: {args.batching} {json.dumps(BATCHING[args.batching])}")
        print(f"latencies in ms; {args.duration:g} s per cell after {args.warmup:g} s warmup; "
              f"{args.load_processes} load-generator processes; median of {args.rounds} "
              "interleaved off/on rounds")
        print(table(rows))
        if tuning:
            print()
            print(f"| batching file ({max(clients)} clients) | signature | off req/s p50 p99 "
                  "| on req/s p50 p99 | on/off |")
            print("|---|---|---|---|---|")
            for t in tuning:
                print(f"| {t['name']} | {t['signature']} | {fmt(t['off'])} | {fmt(t['on'])} "
                      f"| {t['ratio']:.2f}x |")
        for r in rows:
            if r["clients"] == max(clients):
                ratio = r["on"]["rps"] / r["off"]["rps"]
                verdict = "met" if ratio >= 3 else "NOT met"
                print(f"target (>= 3x at {r['clients']} clients), {r['signature']}: "
                      f"{ratio:.2f}x, {verdict}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"model": model_desc, "rows": rows, "tuning": tuning,
                           "batching_on": args.batching}, f, indent=1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
