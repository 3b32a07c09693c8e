"""`tfgen.serving.Client`: the TF Serving gRPC API for generative models.

Talks to tfgen's server or to `tensorflow_model_server` alike, through the
tensorflow-serving-api stubs:

    from tfgen.serving import Client
    with Client("127.0.0.1:8500") as client:
        samples = client.sample("flow_digits", seeds=[0, 1, 2], temperature=0.8)
        scores = client.log_prob("flow_digits", x=samples["samples"])
        print(client.describe("flow_digits"))  # kind, event_shape, levels, num_classes, ...
        print(client.status("flow_digits"))

Input names and dtypes come from the signature table (`tfgen.contract.SIGNATURES`).
"""

import re

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfgen.contract import SIGNATURES, Shape, read_description
from tfgen.errors import UserError
from tfgen.serving.tensors import ndarray_to_proto, proto_to_ndarray

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Client:
    """A gRPC client for one server; safe to share between threads.

    Args:
      host_port: "host:port" of the gRPC endpoint.
      timeout: seconds per call (the gRPC deadline).
      root_certificates: PEM bytes to use TLS; None for a plaintext channel.
    """

    def __init__(self, host_port, timeout=30.0, root_certificates=None,
                 max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self.channel = grpc.secure_channel(host_port, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(host_port, options=options)
        self.address = host_port
        self.timeout = timeout
        self._row_limits = {}  # model -> rows per request the server accepts
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def _spec(spec, model, version=None, label=None, signature=None):
        spec.name = model
        if version is not None:
            spec.version.value = int(version)
        if label:
            spec.version_label = label
        if signature:
            spec.signature_name = signature

    def predict(self, model, inputs, signature="", version=None, label=None, output_filter=()):
        """Run a signature: input name -> array-like; returns output name -> array.

        A request with more rows than the server takes in one request (its
        `--max_rows_per_request`, or TF Serving's batching `max_batch_size`) is sent in
        pieces of the limit the server names, and the outputs are put back together;
        the limit is remembered per model. `predict_response` returns the
        PredictResponse itself (with the version that answered in `model_spec`).
        """
        arrays = {name: np.asarray(value) for name, value in inputs.items()}
        rows = _batch_rows(arrays)
        limit = self._row_limits.get(model)
        if rows and limit and rows > limit:
            return self._predict_in_pieces(model, arrays, rows, limit, signature, version, label,
                                           output_filter)
        try:
            response = self.predict_response(model, arrays, signature, version, label,
                                             output_filter)
        except grpc.RpcError as e:
            limit = _row_limit(e)
            if not rows or limit is None or rows <= limit:
                raise
            self._row_limits[model] = limit
            return self._predict_in_pieces(model, arrays, rows, limit, signature, version, label,
                                           output_filter)
        return {alias: proto_to_ndarray(t, alias, max_elements=2**62) for alias, t in response.outputs.items()}

    def _predict_in_pieces(self, model, arrays, rows, limit, *args):
        parts = [
            self.predict(model, {k: v[start:start + limit] for k, v in arrays.items()}, *args)
            for start in range(0, rows, limit)
        ]
        return {alias: np.concatenate([p[alias] for p in parts]) for alias in parts[0]}

    def predict_response(self, model, inputs, signature="", version=None, label=None,
                         output_filter=()):
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, label, signature)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(ndarray_to_proto(np.asarray(value)))
        request.output_filter.extend(output_filter)
        return self.predictions.Predict(request, timeout=self.timeout)

    def sample(self, model, seeds, temperature=None, condition=None, version=None, label=None):
        """Call the `sample` signature: one sample per seed (int64), same seed, same sample.
        `temperature` and `condition` may be one value for every row."""
        seeds = np.asarray(seeds).reshape(-1)
        inputs = _inputs("sample", len(seeds), seed=seeds, temperature=temperature, condition=condition)
        return self.predict(model, inputs, "sample", version, label)

    def log_prob(self, model, x, condition=None, version=None, label=None):
        """Call the `log_prob` signature on a batch x (and its int32 condition, for
        conditional models): returns log_prob, bits_per_dim."""
        x = np.asarray(x)
        return self.predict(model, _inputs("log_prob", len(x), x=x, condition=condition), "log_prob",
                            version, label)

    def describe(self, model, version=None, label=None):
        """What the model's `describe` signature says of it, e.g. `{"kind": "image",
        "event_shape": (8, 8, 1), "levels": 17, "num_classes": 10, "log_prob_kind":
        "dequantized_lower_bound", "sample_rate": 0}` (0: none; see
        `tfgen.contract.SIGNATURES["describe"]`).

        Raises:
          ValueError: the model has no such signature (not a tfgen export of this format).
        """
        inputs = _inputs("describe", 1, rows=0)
        try:
            outputs = self.predict(model, inputs, "describe", version, label)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
                raise UserError(f"model {model!r} cannot describe itself ({e.details()}): it is not "
                                 "a tfgen export with a describe signature") from None
            raise
        return read_description(outputs)

    def metadata(self, model, version=None, label=None):
        """The model's SignatureDefs, as a dict (JSON form of the protos)."""
        response, signature_map = self._signature_map(model, version, label)
        return {
            "model": response.model_spec.name,
            "version": response.model_spec.version.value,
            "signature_def": {
                k: json_format.MessageToDict(v, preserving_proto_field_name=True)
                for k, v in signature_map.signature_def.items()
            },
        }

    def _signature_map(self, model, version, label):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, version, label)
        response = self.predictions.GetModelMetadata(request, timeout=self.timeout)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return response, signature_map

    def signature(self, model, signature, version=None, label=None):
        """What a client can know of a signature from GetModelMetadata
        (`tfgen.serving.signatures.describe`): {"inputs": {alias: (dtype name, shape)},
        "outputs": {...}, "defaults": [alias]}, dtype names as numpy's ("float32",
        "int64", ...), unknown dims as -1."""
        from tfgen.serving.signatures import describe

        defs = self._signature_map(model, version, label)[1].signature_def
        if signature not in defs:
            raise UserError(f"model {model!r} has no signature {signature!r}; it has {sorted(defs)}")
        return describe(defs[signature])

    def status(self, model, version=None, label=None):
        """[{"version", "state", "error_code", "error_message"}] for the model's versions."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, label)
        response = self.models.GetModelStatus(request, timeout=self.timeout)
        states = get_model_status_pb2.ModelVersionStatus.State
        return [
            {
                "version": s.version,
                "state": states.Name(s.state),
                "error_code": s.status.error_code,
                "error_message": s.status.error_message,
            }
            for s in response.model_version_status
        ]


# How tfgen's server and TF Serving's batching name their per-request row limits.
_ROW_LIMIT = re.compile(
    r"more than the server's limit of (\d+) per request|"
    r"larger than maximum input batch size (\d+)"
)


def _row_limit(error):
    """The rows-per-request limit an INVALID_ARGUMENT names, or None."""
    if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
        return None
    match = _ROW_LIMIT.search(error.details() or "")
    return int(match.group(1) or match.group(2)) if match else None


def _batch_rows(arrays):
    """The common leading dimension of every input (what can be split), or None."""
    sizes = {a.shape[0] if a.ndim else None for a in arrays.values()}
    if len(sizes) != 1 or None in sizes:
        return None
    return sizes.pop()


def _inputs(signature, num_rows, **values):
    """`{input: array}` for the named inputs of a table signature that are not None, in
    the table's dtypes; a one-value-per-row input given as one value is repeated
    `num_rows` times."""
    inputs = {}
    for name, value in values.items():
        if value is None:
            continue
        tensor = SIGNATURES[signature].input(name)
        array = np.asarray(value, dtype=tensor.dtype)
        if tensor.shape is Shape.ROW:
            array = np.broadcast_to(array.reshape(-1), [num_rows]).copy()
        inputs[name] = array
    return inputs
