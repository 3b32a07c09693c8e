"""A version warms up on its signatures' quick (Grappler-off) instantiation, serves, and
switches to TensorFlow's default optimized one in the background
(`tfgen.serving.instantiation`)."""

import logging
import os
import shutil
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving_helpers import make_server
from tfgen.serving import tensors
from tfgen.serving.instantiation import quick_and_optimized
from tfgen.serving.model_manager import ModelConfig, Servable
from tfgen.serving.signatures import InputLimits


def test_quick_warmup_answers_then_switches_to_exactly_today_s_optimized_answers(
        exported, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tfgen.serving")
    base = tmp_path / "cond"
    shutil.copytree(exported["cond"], base / "1")
    path = os.path.join(base, "1")

    # TensorFlow's default options throughout: what a server without the quick step serves.
    reference = Servable("cond", 1, path, InputLimits())
    reference.warmup()
    assert reference.optimized
    requests = reference.warmup_requests()
    assert {r.model_spec.signature_name for r in requests} == {"sample", "log_prob"}
    expected = [reference.predict(r) for r in requests]

    # The server serves once the quick warmup is done and switches in the background.
    server = make_server([ModelConfig("cond", str(base))], file_system_poll_wait_seconds=0,
                         quick_warmup=True)
    try:
        served = server.server.manager.servable("cond")
        deadline = time.monotonic() + 60
        while not served.optimized and time.monotonic() < deadline:
            time.sleep(0.05)
        assert served.optimized
        assert "Optimized servable version {name: cond version: 1}" in caplog.text
        # What it served before the switch: the quick instantiation, to float32 rounding.
        quick_options = quick_and_optimized()[0]
        for request, want in zip(requests, expected):
            signature = served.signature(request.model_spec.signature_name)
            feeds = signature.decode_request_inputs(request.inputs, served.limits)
            before = signature.function.call_with(
                quick_options, {k: tf.constant(v) for k, v in feeds.items()})
            for key, value in want.items():
                np.testing.assert_allclose(before[key].numpy(), value, rtol=1e-6, atol=1e-6)
        # After it: exactly what a server without the quick step answers.
        with grpc.insecure_channel(server.grpc_address) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for request, want in zip(requests, expected):
                request.model_spec.name = "cond"
                reply = stub.Predict(request, timeout=30)
                for key, value in want.items():
                    np.testing.assert_array_equal(
                        tensors.proto_to_ndarray(reply.outputs[key], key), value)
    finally:
        server.stop()
