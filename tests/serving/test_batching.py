"""Dynamic batching: merged requests, padding to allowed sizes, queue limits."""

import asyncio
import re
import threading
import time

import grpc
import numpy as np
import pytest

import toy_savedmodels as sm
from serving_helpers import Rest, make_server
from tfgen.serving import Client
from tfgen.serving.batching import QUEUE_FULL_MESSAGE, BatchingParameters
from tfgen.serving.model_manager import ModelConfig


def histogram(text, name, **labels):
    """(count, sum) of a Prometheus histogram in the text exposition."""
    sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
    count = re.search(rf"^{re.escape(name)}_count{{{re.escape(sel)}}} (\S+)$", text, re.M)
    total = re.search(rf"^{re.escape(name)}_sum{{{re.escape(sel)}}} (\S+)$", text, re.M)
    return (float(count.group(1)), float(total.group(1))) if count else (0.0, 0.0)


BATCH = ":tensorflow:serving:batching_session:processed_batch_size"
PADDING = ":tensorflow:serving:batching_session:padding_size"


@pytest.fixture
def toy_base(exported, tmp_path):
    base = tmp_path / "toy"
    sm.copy_version(exported["toy"], str(base), 1)
    return base


def test_concurrent_single_row_requests_merge_into_one_call(toy_base):
    params = BatchingParameters(max_batch_size=32, batch_timeout_micros=200_000,
                                num_batch_threads=1, max_enqueued_batches=4)
    srv = make_server([ModelConfig("toy", str(toy_base))], batching=params)
    try:
        n = 16
        barrier = threading.Barrier(n)
        results = [None] * n

        def one(i):
            with Client(srv.grpc_address) as c:
                barrier.wait()
                results[i] = c.sample("toy", [i], temperature=0.5)["samples"][0]

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Each request got its own row: the same as its seed alone.
        np.testing.assert_allclose(np.stack(results), sm.sample_np(np.arange(n), 0.5), rtol=1e-6)
        text = Rest(srv.rest_url).get("/monitoring/prometheus/metrics")[1]
        batches, rows = histogram(text, BATCH, model_name="toy", signature_name="sample")
        assert rows == n and batches < n / 2, (batches, rows)
        assert ":tensorflow:serving:batching_session:queuing_latency_count" in text
    finally:
        srv.stop()


def test_batches_are_padded_to_allowed_sizes(toy_base):
    params = BatchingParameters(max_batch_size=8, allowed_batch_sizes=(2, 4, 8),
                                batch_timeout_micros=0, num_batch_threads=1)
    srv = make_server([ModelConfig("toy", str(toy_base))], batching=params)
    try:
        with Client(srv.grpc_address) as c:
            x = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]], np.float32)
            got = c.log_prob("toy", x)
            np.testing.assert_allclose(got["log_prob"], sm.log_prob_np(x)[0], rtol=1e-6)
            with pytest.raises(grpc.RpcError) as e:  # one request, as the client sends it
                c.predict_response("toy", {"x": np.zeros([9, 2], np.float32)}, "log_prob")
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert e.value.details() == "Task size 9 is larger than maximum input batch size 8"
        text = Rest(srv.rest_url).get("/monitoring/prometheus/metrics")[1]
        assert histogram(text, BATCH, model_name="toy", signature_name="log_prob") == (1.0, 4.0)
        assert histogram(text, PADDING, model_name="toy", signature_name="log_prob") == (1.0, 1.0)
    finally:
        srv.stop()


def test_full_queue_is_unavailable_and_queued_request_still_served(toy_base):
    # One open batch allowed, waiting 1.5 s to fill: a request that needs a second
    # batch is refused at once, as TF Serving refuses it.
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=1_500_000,
                                max_enqueued_batches=1, num_batch_threads=1)
    srv = make_server([ModelConfig("toy", str(toy_base))], batching=params)
    try:
        first = {}

        def queued():
            with Client(srv.grpc_address) as c:
                first["result"] = c.log_prob("toy", np.zeros([1, 2], np.float32))

        t = threading.Thread(target=queued)
        t.start()
        time.sleep(0.3)
        with Client(srv.grpc_address) as c:
            start = time.monotonic()
            with pytest.raises(grpc.RpcError) as e:
                c.log_prob("toy", np.zeros([4, 2], np.float32))
            assert time.monotonic() - start < 1.0
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            assert e.value.details() == QUEUE_FULL_MESSAGE
        status, body = Rest(srv.rest_url).post(
            "/v1/models/toy:predict", {"signature_name": "log_prob", "instances": [[0.0, 0.0]] * 4})
        assert (status, body) == (503, {"error": QUEUE_FULL_MESSAGE})
        t.join()
        assert first["result"]["log_prob"].shape == (1,)
    finally:
        srv.stop()


def test_deadline_expires_in_the_queue(toy_base):
    params = BatchingParameters(max_batch_size=64, batch_timeout_micros=1_000_000, num_batch_threads=1)
    srv = make_server([ModelConfig("toy", str(toy_base))], batching=params)
    try:
        with Client(srv.grpc_address, timeout=0.3) as c:
            with pytest.raises(grpc.RpcError) as e:
                c.log_prob("toy", np.zeros([1, 2], np.float32))
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        with Client(srv.grpc_address) as c:  # the server carries on
            assert c.log_prob("toy", np.zeros([1, 2], np.float32))["log_prob"].shape == (1,)
    finally:
        srv.stop()


def test_batching_parameters_are_validated():
    with pytest.raises(ValueError, match="must match max_batch_size"):
        BatchingParameters(max_batch_size=8, allowed_batch_sizes=(2, 4))
    with pytest.raises(ValueError, match="monotonically increasing"):
        BatchingParameters(max_batch_size=8, allowed_batch_sizes=(4, 2, 8))
    assert BatchingParameters(max_batch_size=8, allowed_batch_sizes=(2, 4, 8)).padded_size(3) == 4


@pytest.mark.serial
@pytest.mark.slow
def test_batching_serves_more_requests_per_second_at_64_clients(tmp_path):
    """The issue's target: at 64 clients, batching on >= 3x the requests/s of off, for
    a model whose call has a fixed cost (~ms, as a real network's) beside per-row work."""
    toy_base = tmp_path / "heavy"
    sm.write_model(str(toy_base), 1, delay_ms=20, warmup=False)

    def rate(batching):
        srv = make_server([ModelConfig("toy", str(toy_base))], batching=batching, runtime_threads=2)
        count = [0]
        stop = threading.Event()

        def load():
            with Client(srv.grpc_address) as c:
                while not stop.is_set():
                    c.log_prob("toy", np.zeros([1, 2], np.float32))
                    count[0] += 1

        threads = [threading.Thread(target=load) for _ in range(64)]
        for t in threads:
            t.start()
        time.sleep(2)
        before, start = count[0], time.monotonic()
        time.sleep(5)
        result = (count[0] - before) / (time.monotonic() - start)
        stop.set()
        for t in threads:
            t.join()
        srv.stop()
        return result

    off = rate(None)
    on = rate(BatchingParameters(max_batch_size=64, batch_timeout_micros=5000, num_batch_threads=2,
                                 max_enqueued_batches=100))
    print(f"64 clients: batching off {off:.0f} req/s, on {on:.0f} req/s, ratio {on / off:.1f}")
    assert on >= 3 * off


def test_rest_requests_time_out_with_504(toy_base):
    params = BatchingParameters(max_batch_size=64, batch_timeout_micros=1_000_000, num_batch_threads=1)
    srv = make_server([ModelConfig("toy", str(toy_base))], batching=params, rest_api_timeout_seconds=0.2)
    try:
        status, body = Rest(srv.rest_url).post(
            "/v1/models/toy:predict", {"signature_name": "log_prob", "instances": [[0.0, 0.0]]})
        assert status == 504 and "timed out" in body["error"]
    finally:
        srv.stop()


RUNTIME = ":tensorflow:serving:runtime_latency"
SHIPPED_BATCHING = __import__("os").path.join(
    __import__("os").path.dirname(__file__), "..", "..", "serving", "batching.config")


def test_shipped_batching_config_splits_large_requests_into_execution_batches(toy_base):
    """serving/batching.config refused every request over 64 rows; with large batch
    splitting a 2000-row request runs as batches of at most 64 rows, answers every row
    in order, and runtime_latency is recorded on the batched path too."""
    from tfgen.serving.config import read_batching_parameters_file

    params = read_batching_parameters_file(SHIPPED_BATCHING)
    assert params.enable_large_batch_splitting and params.execution_batch_size == 64
    srv = make_server([ModelConfig("toy", str(toy_base))], batching=params)
    try:
        with Client(srv.grpc_address) as c:
            seeds = np.arange(2000)
            out = c.sample("toy", seeds, temperature=0.5)
            np.testing.assert_allclose(out["samples"], sm.sample_np(seeds, 0.5), rtol=1e-6)
            x = np.random.default_rng(0).normal(size=[65, 2]).astype(np.float32)
            np.testing.assert_allclose(c.log_prob("toy", x)["log_prob"], sm.log_prob_np(x)[0],
                                       rtol=1e-5)
        text = Rest(srv.rest_url).get("/monitoring/prometheus/metrics")[1]
        batches, rows = histogram(text, BATCH, model_name="toy", signature_name="sample")
        assert rows == 2000 and batches >= 2000 / 64, (batches, rows)
        assert re.search(r'^:tensorflow:serving:batching_session:processed_batch_size_bucket\{le="64.0",'
                         r'model_name="toy",signature_name="sample"\} 32.0$', text, re.M), text
        runs, _ = histogram(text, RUNTIME, API="Predict", model_name="toy", runtime="TF2")
        assert runs >= batches
    finally:
        srv.stop()


def test_cancelled_pieces_of_a_split_request_are_not_run(exported, tmp_path):
    """A split request whose caller's deadline passes stops costing batches: the pieces
    still queued are dropped, not run."""
    base = tmp_path / "slow"
    sm.write_model(str(base), 1, delay_ms=40, warmup=False)
    params = BatchingParameters(max_batch_size=4096, enable_large_batch_splitting=True,
                                max_execution_batch_size=8, num_batch_threads=1,
                                max_enqueued_batches=1000)
    srv = make_server([ModelConfig("slow", str(base))], batching=params)
    try:
        with Client(srv.grpc_address, timeout=0.5) as c:
            with pytest.raises(grpc.RpcError) as e:
                c.log_prob("slow", np.zeros([8 * 200, 2], np.float32))  # 200 pieces
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(1.0)
        text = Rest(srv.rest_url).get("/monitoring/prometheus/metrics")[1]
        batches, _ = histogram(text, BATCH, model_name="slow", signature_name="log_prob")
        assert batches < 100, f"{batches} of 200 pieces ran after the caller left"
    finally:
        srv.stop()


@pytest.mark.parametrize("limit_by", ["rows", "batching"])
def test_client_splits_to_the_server_s_limit(toy_base, limit_by):
    if limit_by == "rows":
        from tfgen.serving.signatures import InputLimits

        srv = make_server([ModelConfig("toy", str(toy_base))], limits=InputLimits(max_rows=100))
    else:  # TF Serving's own message: "Task size N is larger than maximum input batch size M"
        srv = make_server([ModelConfig("toy", str(toy_base))],
                          batching=BatchingParameters(max_batch_size=64))
    try:
        with Client(srv.grpc_address) as c:
            x = np.random.default_rng(1).normal(size=[250, 2]).astype(np.float32)
            np.testing.assert_allclose(c.log_prob("toy", x)["log_prob"], sm.log_prob_np(x)[0],
                                       rtol=1e-5)
            assert c._row_limits["toy"] == (100 if limit_by == "rows" else 64)
    finally:
        srv.stop()


class _CountingLoop(asyncio.SelectorEventLoop):
    """A real event loop that counts the callbacks other threads schedule on it."""

    threadsafe_calls = 0

    def call_soon_threadsafe(self, *args, **kwargs):
        self.threadsafe_calls += 1
        return super().call_soon_threadsafe(*args, **kwargs)


def test_a_batch_of_loop_requests_wakes_the_loop_once(toy_base):
    """Requests submitted with the caller's loop get asyncio futures of that loop, all
    of a batch completed by one cross-thread callback (not one per request); a request
    cancelled while queued is dropped before it runs; split requests keep a
    concurrent.futures.Future."""
    import concurrent.futures

    from tfgen.serving.batching import BatchScheduler
    from tfgen.serving.model_manager import Servable
    from tfgen.serving.signatures import InputLimits

    servable = Servable("toy", 1, str(toy_base / "1"), InputLimits())
    signature = servable.signature("sample")
    params = BatchingParameters(max_batch_size=64, batch_timeout_micros=300_000, num_batch_threads=1,
                                enable_large_batch_splitting=True, max_execution_batch_size=16)
    scheduler = BatchScheduler(signature, params)
    loop = _CountingLoop()

    def one_row(seed):
        return {"seed": np.array([seed], np.int64), "temperature": np.array([0.5], np.float32)}

    async def main():
        futures = [scheduler.submit(one_row(i), loop=loop) for i in range(8)]
        futures[3].cancel()  # the client went away while it queued
        split = scheduler.submit({"seed": np.arange(20, dtype=np.int64),
                                  "temperature": np.full([20], 0.5, np.float32)}, loop=loop)
        assert all(asyncio.isfuture(f) for f in futures) and isinstance(split, concurrent.futures.Future)
        answered = await asyncio.gather(*(f for i, f in enumerate(futures) if i != 3))
        return answered, await asyncio.wrap_future(split)

    try:
        answered, whole = loop.run_until_complete(main())
    finally:
        scheduler.close()
        loop.close()
    seeds = [i for i in range(8) if i != 3]
    np.testing.assert_allclose(np.concatenate([a["samples"] for a in answered]),
                               sm.sample_np(np.array(seeds), 0.5), rtol=1e-6)
    np.testing.assert_allclose(whole["samples"], sm.sample_np(np.arange(20), 0.5), rtol=1e-6)
    # One callback for the 7 one-row requests' batch (the split request's two pieces
    # complete concurrent futures, whose wrap_future costs a callback each at most).
    assert loop.threadsafe_calls <= 3, loop.threadsafe_calls
