"""TF Serving's REST API on aiohttp, plus metrics and health endpoints.

- `GET  /v1/models/{m}[/versions/{n}|/labels/{l}]`            model status
- `GET  /v1/models/{m}[/versions/{n}|/labels/{l}]/metadata`   signature defs
- `POST /v1/models/{m}[/versions/{n}|/labels/{l}]:predict`    row (`instances` ->
  `predictions`) or columnar (`inputs` -> `outputs`) format, `{"b64": ...}` strings
- `POST ...:classify|:regress`                                 TF Serving's errors for
  models without such signatures
- `GET  /monitoring/prometheus/metrics`, `/healthz` (alive), `/readyz` (models loaded,
  not draining)

Errors are `{"error": "<message>"}` with TF Serving's HTTP status for the gRPC code.
"""

import asyncio
import json
import logging
import math
import re
import time
import urllib.parse

from aiohttp import web
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from tfgen.serving import json_body, tensors
from tfgen.serving.errors import ServingError, deadline_exceeded, invalid_argument
from tfgen.serving.grpc_service import model_status_response, offload
from tfgen.serving.metrics import CONTENT_TYPE
from tfgen.serving.signatures import DEFAULT_SIGNATURE, check_example_method, example_api_unsupported

PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
INT64_MAX = 2**63 - 1

log = logging.getLogger("tfgen.serving")


def _json_response(body, status=200):
    text = json.dumps(body, indent=4, allow_nan=True)
    return web.Response(text=text, status=status, content_type="application/json")


def error_response(error):
    return _json_response({"error": error.message}, status=error.http_status)


def _model_spec(name, version, label):
    spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name))
    if version:
        # Digits only (the path pattern); compare lengths first so int() never sees
        # thousands of digits.
        if len(version) > len(str(INT64_MAX)) or int(version) > INT64_MAX:
            raise invalid_argument(f"Failed to convert version: {version[:40]} to numeric.")
        value = int(version)
        if label:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({label}) cannot be "
                "supplied."
            )
        spec.version.value = value
    if label:
        spec.version_label = urllib.parse.unquote(label)
    return spec


def _proto_json(message):
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(host):
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _host_name(host_header):
    """'example.com:8501' -> 'example.com'; '[::1]:8501' -> '::1'."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class RestApi:
    """The REST routes and their guards.

    Args:
      allowed_hosts: `Host` header names accepted (None: any). A server bound to
        loopback accepts only loopback names by default, so a web page whose DNS name
        was rebound to 127.0.0.1 cannot call it from the user's browser.
      connections: the port's `GuardedConnections`, told when a request starts and ends.
    """

    def __init__(self, core, metrics=None, prometheus_path=None, is_draining=lambda: False,
                 timeout_seconds=30.0, allowed_hosts=None, connections=None):
        self.core = core
        self.timeout_seconds = timeout_seconds
        self.metrics = metrics
        self.prometheus_path = prometheus_path
        self.is_draining = is_draining
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.connections = connections

    @web.middleware
    async def guard(self, request, handler):
        """Host check, the body read within the connection's read timeout, and TF
        Serving's JSON body for every error, aiohttp's own 404/405/413 included."""
        try:
            host = request.headers.get("Host")
            if self.allowed_hosts is not None and host is not None:
                name = _host_name(host).lower()
                if name not in self.allowed_hosts:
                    return _json_response(
                        {"error": f"Host {host[:100]!r} is not allowed: this server answers "
                                  "loopback names only (--rest_allowed_hosts adds more)"},
                        status=403,
                    )
            if request.body_exists:
                limit = self.body_limit(request.raw_path.split("?", 1)[0])
                if limit is not None and (request.content_length or 0) > limit:
                    return error_response(invalid_argument(
                        f"Request body of {request.content_length} bytes is larger than any "
                        f"valid predict request to this model ({limit} bytes at "
                        f"{self.core.limits.max_rows} rows, --max_rows_per_request)"))
                try:
                    await request.read()  # cached for the handler
                except web.HTTPRequestEntityTooLarge as e:
                    return error_response(invalid_argument(
                        f"Request body too large: {e.text}; the limit is --max_request_bytes"))
            if self.connections:  # the request is complete: the read timeout stops here
                self.connections.request_started(request.transport)
            try:
                return await handler(request)
            except web.HTTPException as e:
                return _json_response({"error": e.reason}, status=e.status)
            except Exception:
                log.exception("REST request %s %s failed", request.method, request.path[:200])
                return _json_response({"error": "Internal error; see the server log"},
                                      status=500)
        finally:
            if self.connections:
                self.connections.request_finished(request.transport)

    def body_limit(self, path):
        """The largest body a valid predict request to the model in `path` can have, or
        None (not a predict path, model not loaded, or string inputs of any length).

        Every numeric leaf is bounded in JSON: at most BYTES_PER_VALUE characters with
        separators and indentation. So `max_rows` rows of the model's largest
        signature bound the body, and a larger one is refused before it is read.
        """
        match = PREDICTION_PATH.fullmatch(path)
        if not match:
            return None
        try:
            servable = self.core.servable(_model_spec(match.group(1), match.group(2), match.group(3)))
        except ServingError:
            return None
        return servable.extra("rest_body_limit", lambda: _body_limit(servable, self.core.limits))

    def app(self, max_body_bytes):
        app = web.Application(client_max_size=max_body_bytes, middlewares=[self.guard])
        app.router.add_route("*", "/v1/{tail:.*}", self.handle_v1)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        if self.prometheus_path:
            app.router.add_get(self.prometheus_path, self.prometheus)
        return app

    async def healthz(self, request):
        return web.json_response({"status": "ok"})

    async def readyz(self, request):
        if self.is_draining():
            return web.json_response({"status": "draining"}, status=503)
        if not self.core.manager.ready():
            return web.json_response({"status": "models loading"}, status=503)
        return web.json_response({"status": "ready", "models": self.core.manager.model_names()})

    async def prometheus(self, request):
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def handle_v1(self, request):
        path = request.raw_path.split("?", 1)[0]
        start = time.monotonic()
        labels = {"model": "", "api": ""}  # filled by _route for the metrics
        status = "OK"
        try:
            with self.core.request():
                return await self._route(request, path, labels)
        except ServingError as e:
            status = e.code.name
            return error_response(e)
        finally:
            if self.metrics and labels["api"]:
                self.metrics.request(self.core.metric_label(labels["model"]), labels["api"],
                                     "REST", status, time.monotonic() - start)

    async def _route(self, request, path, labels):
        method = request.method
        match = PREDICTION_PATH.fullmatch(path) if method == "POST" else None
        if match:
            labels["model"] = urllib.parse.unquote(match.group(1))
            api = match.group(4).lower()
            labels["api"] = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}[api]
            spec = _model_spec(match.group(1), match.group(2), match.group(3))
            body = await request.read()  # read by `guard`, within its limits
            if api == "predict":
                return _json_response(await self.predict(spec, body))
            return self.classify_or_regress(spec, body, labels["api"])
        match = STATUS_PATH.fullmatch(path) if method == "GET" else None
        if match:
            labels["model"] = urllib.parse.unquote(match.group(1) or "")
            labels["api"] = "GetModelMetadata" if match.group(4) else "GetModelStatus"
            if not match.group(1):
                raise invalid_argument("Missing model name in request.")
            spec = _model_spec(match.group(1), match.group(2), match.group(3))
            if match.group(4):
                return _json_response(self.metadata(spec))
            request_proto = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
            return _json_response(_proto_json(model_status_response(self.core, request_proto)))
        raise invalid_argument(f"Malformed request: {method} {path[:200]}")

    # --- predict -----------------------------------------------------------------------------

    async def predict(self, spec, body):
        deadline = time.monotonic() + self.timeout_seconds if self.timeout_seconds else None
        call = await offload(len(body), self._start_predict, spec, body, deadline,
                             asyncio.get_running_loop(), threshold=REST_OFFLOAD_BYTES)
        try:
            outputs = await asyncio.wait_for(call.outputs(), self.timeout_seconds)
        except asyncio.TimeoutError:
            call.future.cancel()
            raise deadline_exceeded(
                f"Request timed out after {self.timeout_seconds:g} s (--rest_api_timeout_in_ms)"
            ) from None
        outputs = {alias: outputs[alias] for alias in call.output_names}
        return await offload(sum(v.nbytes for v in outputs.values()), make_json_outputs, outputs,
                             call.row_format, threshold=REST_OFFLOAD_BYTES)

    def _start_predict(self, spec, body, deadline, loop):
        doc = parse_json(body, self.core.limits.max_rows)
        if "signature_name" in doc:
            if not isinstance(doc["signature_name"], str):
                raise invalid_argument(
                    f"JSON Value: {_short(doc)} not formatted correctly. 'signature_name' key "
                    "must be a string value."
                )
            spec.signature_name = doc["signature_name"]
        servable = self.core.servable(spec)
        name = spec.signature_name or DEFAULT_SIGNATURE
        if name not in servable.signatures:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        signature = servable.signatures[name]
        arrays, row_format = request_arrays(doc, signature, self.core.limits)
        call = self.core.predict(spec, arrays=arrays, deadline=deadline, loop=loop)
        call.row_format = row_format
        return call

    def metadata(self, spec):
        servable = self.core.servable(spec)
        model_spec = model_pb2.ModelSpec(name=servable.name)
        model_spec.version.value = servable.version
        return {
            "model_spec": _proto_json(model_spec),
            "metadata": {"signature_def": _proto_json(servable.signature_def_map())},
        }

    def classify_or_regress(self, spec, body, api):
        doc = parse_json(body, self.core.limits.max_rows)
        if isinstance(doc.get("signature_name"), str):
            spec.signature_name = doc["signature_name"]
        servable = self.core.servable(spec)
        check_example_method(servable.signature_defs, spec.signature_name, api)
        raise example_api_unsupported(api)


# JSON costs ~1 us a row to decode (a 5,000-row body of 95 KB took 4.3 ms to reach the
# row cap), 50-100x proto's cost a byte: above this size a body is decoded, and a response
# encoded, on a worker thread, so a batch of them never stalls gRPC on the event loop.
REST_OFFLOAD_BYTES = 16 << 10
BYTES_PER_VALUE = 64  # "-3.4028234663852886e+38" is 23; the rest is room for layout
BYTES_PER_INPUT_ROW = 64  # a row's key, quotes, brackets and braces
BODY_SLACK = 4096  # signature_name and the enclosing object


def _body_limit(servable, limits):
    from tensorflow.core.framework import types_pb2

    largest = 0
    for signature in servable.signatures.values():
        per_row = 0
        for alias, info in signature.inputs.items():
            if info.dtype == types_pb2.DT_STRING:
                return None
            dims = [d.size for d in info.tensor_shape.dim][1:]
            if info.tensor_shape.unknown_rank or any(d < 0 for d in dims):
                return None
            per_row += BYTES_PER_VALUE * math.prod(dims) + BYTES_PER_INPUT_ROW + len(alias)
        largest = max(largest, per_row)
    return limits.max_rows * largest + BODY_SLACK


def _short(value):
    text = json.dumps(value, allow_nan=True)
    return text if len(text) <= 200 else text[:200] + "..."


def parse_json(body, max_rows):
    """A REST body -> its JSON object, rows capped while decoding (`json_body`)."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = json_body.parse_body(body, max_rows)
    except json.JSONDecodeError as e:
        raise invalid_argument(f"JSON Parse error: {e.msg} at offset: {e.pos}") from None
    except (UnicodeDecodeError, RecursionError) as e:
        raise invalid_argument(f"JSON Parse error: {type(e).__name__}") from None
    except ValueError as e:  # e.g. an integer of more digits than int() converts
        raise invalid_argument(f"JSON Parse error: {str(e)[:200]}") from None
    return doc


def request_arrays(doc, signature, limits):
    """The `instances` or `inputs` of a predict body -> (alias -> array, row format?).

    As TF Serving's json_tensor.cc, except that inputs with a SignatureDef default may
    be left out of row-format objects (they are filled like gRPC requests).
    """
    if "instances" in doc and "inputs" in doc:
        raise invalid_argument(
            f"JSON Value: {_short(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if "instances" in doc:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid_argument(
                f"JSON Value: {_short(doc)} Excepting 'instances' to be an list/array"
            )
        if not instances:
            raise invalid_argument(f"JSON Value: {_short(doc)} No values in 'instances' array")
        return _from_instances(instances, signature, limits), True
    if "inputs" in doc:
        return _from_inputs(doc["inputs"], signature, limits), False
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _is_object(value):
    return isinstance(value, dict) and not tensors.is_b64_object(value)


def _from_instances(instances, signature, limits):
    infos = signature.inputs
    required = set(infos) - set(signature.defaults)
    if not _is_object(instances[0]):
        if len(required) > 1 or (len(infos) > 1 and not required):
            raise invalid_argument(
                "instances is a plain list, but expecting list of objects as multiple input "
                "tensors required as per tensorinfo_map"
            )
        alias = next(iter(required)) if required else next(iter(infos))
        for i, item in enumerate(instances):
            if _is_object(item):
                raise invalid_argument(
                    f"Expecting value/list but got object at item {i} of input list"
                )
        return {alias: _convert(instances, alias, signature, limits, "instances")}
    columns = {}
    for i, item in enumerate(instances):
        if not _is_object(item):
            raise invalid_argument(f"Expecting object but got list at item {i} of input list")
        for key in item:
            if key not in infos:
                raise invalid_argument(
                    f"Failed to process element: {i} key: {key} of 'instances' list. Error: "
                    f"INVALID_ARGUMENT: JSON object: does not have named input: {key}"
                )
        keys = set(item)
        if not required <= keys or (i and keys != set(columns)):
            raise invalid_argument(
                f"Failed to process element: {i} of 'instances' list. JSON object: "
                f"{_short(item)} must only have keys: {','.join(sorted(infos))}"
            )
        for key, value in item.items():
            columns.setdefault(key, []).append(value)
    return {
        alias: _convert(values, alias, signature, limits, "instances")
        for alias, values in columns.items()
    }


def _from_inputs(value, signature, limits):
    infos = signature.inputs
    if not _is_object(value):
        required = set(infos) - set(signature.defaults)
        if len(infos) > 1 and len(required) != 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        alias = next(iter(required)) if required else next(iter(infos))
        return {alias: _convert(value, alias, signature, limits, "inputs")}
    arrays = {}
    for key, item in value.items():
        if key not in infos:
            raise invalid_argument(
                f"Inputs contains invalid name. Used request inputs: "
                f"{','.join(sorted(set(value) & set(infos)))}, request input: "
                f"{','.join(sorted(value))}"
            )
        arrays[key] = _convert(item, key, signature, limits, "inputs")
    for alias in infos:
        if alias not in arrays and alias not in signature.defaults:
            raise invalid_argument(f"Missing named input: {alias} in 'inputs' object.")
    return arrays


def _convert(value, alias, signature, limits, where):
    # Shape and caps from the outer lists first: nothing is converted for a request
    # that will be refused anyway.
    signature.check_declared_shape(alias, tensors.dense_shape(value), limits)
    try:
        return tensors.json_to_ndarray(value, signature.inputs[alias].dtype,
                                       limits.max_tensor_elements)
    except ServingError as e:
        raise invalid_argument(f"{e.message} (input '{alias}' in '{where}')") from None


def make_json_outputs(outputs, row_format):
    """Output arrays -> TF Serving's `predictions` (rows) or `outputs` (columns)."""
    if not row_format:
        if len(outputs) == 1:
            (alias, value), = outputs.items()
            return {"outputs": tensors.ndarray_to_json(value, alias)}
        return {"outputs": {a: tensors.ndarray_to_json(v, a) for a, v in outputs.items()}}
    batch = None
    for alias, value in outputs.items():
        size = value.shape[0] if value.ndim else None
        if size is None or (batch is not None and size != batch[1]):
            raise invalid_argument(
                f"Tensor name: {alias} has inconsistent batch size: {size} expecting: "
                f"{batch[1] if batch else 'a batched output'}"
            )
        batch = batch or (alias, size)
    if len(outputs) == 1:
        (alias, value), = outputs.items()
        return {"predictions": tensors.ndarray_to_json(value, alias)}
    columns = {a: tensors.ndarray_to_json(v, a) for a, v in outputs.items()}
    return {
        "predictions": [{a: columns[a][i] for a in columns} for i in range(batch[1])]
    }
