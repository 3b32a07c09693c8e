"""Config files parsed as TF Serving parses them; tensor conversion and caps."""

import math
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving_helpers import Rest, make_server
from tfgen.serving import config as config_lib
from tfgen.serving import tensors
from tfgen.serving.errors import ServingError
from tfgen.serving.model_manager import ModelConfig


def test_batching_parameters_file(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("""
        max_batch_size { value: 32 }
        batch_timeout_micros { value: 5000 }
        max_enqueued_batches { value: 100 }
        num_batch_threads { value: 2 }
        allowed_batch_sizes: 8
        allowed_batch_sizes: 16
        allowed_batch_sizes: 32
        pad_variable_length_inputs: true
    """)
    params = config_lib.read_batching_parameters_file(str(path))
    assert (params.max_batch_size, params.batch_timeout_micros, params.max_enqueued_batches,
            params.num_batch_threads, params.allowed_batch_sizes) == (32, 5000, 100, 2, (8, 16, 32))
    path.write_text("max_batch_size: 3")  # not the Int64Value form TF Serving expects
    with pytest.raises(ValueError, match="batching.config"):
        config_lib.read_batching_parameters_file(str(path))


def test_model_config_file_rejects_bad_entries(tmp_path):
    path = tmp_path / "models.config"
    path.write_text('model_config_list { config { name: "../x" base_path: "/tmp" } }')
    with pytest.raises(ValueError, match="invalid model name"):
        config_lib.read_model_config_file(str(path))
    path.write_text('model_config_list { config { name: "m" base_path: "/tmp" model_platform: "pytorch" } }')
    with pytest.raises(ValueError, match="model_platform"):
        config_lib.read_model_config_file(str(path))


def test_monitoring_config_file_sets_the_metrics_path(exported, tmp_path):
    import shutil

    path = tmp_path / "monitoring.config"
    path.write_text('prometheus_config { enable: true, path: "/metrics" }')
    enabled, metrics_path = config_lib.read_monitoring_config_file(str(path))
    assert (enabled, metrics_path) == (True, "/metrics")
    shutil.copytree(exported["toy"], tmp_path / "toy" / "1")
    srv = make_server([ModelConfig("toy", str(tmp_path / "toy"))], prometheus_path=metrics_path)
    try:
        rest = Rest(srv.rest_url)
        assert rest.get("/metrics")[0] == 200
        assert rest.get("/monitoring/prometheus/metrics")[0] == 404
    finally:
        srv.stop()


def test_proto_round_trip_matches_tensorflow():
    for array in [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([1, -2], np.int64),
        np.array([[True, False]]),
        np.array([0.5, 2.0], np.float16),
        np.array([2.5, -1e300], np.float64),
        np.array([[-3, 4]], np.int8),
        np.array([65535, 0], np.uint16),
        np.array([2**32 - 1], np.uint32),
        np.array([2**64 - 1], np.uint64),
        np.array([b"a", b"\xff"], dtype=object),
    ]:
        proto = tensors.ndarray_to_proto(array)
        np.testing.assert_array_equal(tf.make_ndarray(proto), array)
        # Typed fields and tensor_content (make_tensor_proto's layout) decode alike,
        # with the array's own dtype and shape, writable as tf.make_ndarray's.
        for sent in (proto, tf.make_tensor_proto(array)):
            decoded = tensors.proto_to_ndarray(sent)
            np.testing.assert_array_equal(decoded, array)
            assert (decoded.dtype, decoded.shape) == (array.dtype, array.shape)
            assert decoded.flags.writeable


def test_splat_form_fills_the_declared_shape():
    proto = tf.make_tensor_proto(1.5, shape=[2, 3])
    np.testing.assert_array_equal(tensors.proto_to_ndarray(proto), np.full([2, 3], 1.5, np.float32))
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"x"])
    proto.tensor_shape.dim.add().size = 3
    assert list(tensors.proto_to_ndarray(proto)) == [b"x"] * 3


def test_values_short_of_the_shape_are_refused_not_padded():
    # tf.make_ndarray would repeat the last value: [1, 2] for shape [3] -> [1, 2, 2].
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32, int_val=[1, 2])
    proto.tensor_shape.dim.add().size = 3
    with pytest.raises(ServingError, match="declares 3 elements but the proto holds 2 values"):
        tensors.proto_to_ndarray(proto, "x")


def test_string_tensor_content_is_refused_not_ignored():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"x"],
                                   tensor_content=b"\x01y")
    proto.tensor_shape.dim.add().size = 1
    with pytest.raises(ServingError, match="string tensors are sent in string_val"):
        tensors.proto_to_ndarray(proto, "x")


def test_element_count_is_checked_before_decoding():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0])
    for d in (1 << 20, 1 << 20, 1 << 20):
        proto.tensor_shape.dim.add().size = d
    start = time.monotonic()
    with pytest.raises(ServingError, match="more than the server's limit"):
        tensors.proto_to_ndarray(proto, "x", max_elements=1000)
    assert time.monotonic() - start < 0.1


def test_json_conversion_follows_tf_serving_rules():
    f32 = types_pb2.DT_FLOAT
    assert tensors.json_to_ndarray([[1, 2.5]], f32).dtype == np.float32
    with pytest.raises(ServingError, match="without loss of precision"):
        tensors.json_to_ndarray([2**25 + 1], f32)
    with pytest.raises(ServingError, match="is not of expected type: int32"):
        tensors.json_to_ndarray([True], types_pb2.DT_INT32)
    with pytest.raises(ServingError, match="found at incorrect level"):
        tensors.json_to_ndarray([[1.0], 2.0], f32)
    assert tensors.ndarray_to_json(np.array([0.1, math.inf], np.float32)) == [0.1, math.inf]
    assert tensors.ndarray_to_json(np.array([b"\xff"], object), "raw_bytes") == [{"b64": "/w=="}]


def test_shipped_deployment_files_parse():
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..", "serving")
    models = config_lib.read_model_config_file(os.path.join(root, "models.config"))
    assert models and all(m.base_path.startswith("saved_models/") for m in models)
    params = config_lib.read_batching_parameters_file(os.path.join(root, "batching.config"))
    # Requests up to --max_rows_per_request's default, run in batches of at most 64 rows.
    assert params.max_batch_size == 4096 and params.enable_large_batch_splitting
    assert params.execution_batch_size == 64 and params.batch_timeout_micros == 5000
    assert (not params.allowed_batch_sizes
            or params.allowed_batch_sizes[-1] == params.execution_batch_size)
    assert config_lib.read_monitoring_config_file(os.path.join(root, "monitoring.config")) == (
        True, "/monitoring/prometheus/metrics")
