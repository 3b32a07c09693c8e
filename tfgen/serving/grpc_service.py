"""gRPC `tensorflow.serving.PredictionService` and `ModelService` (grpc.aio).

Thin servicers: protos in, `ServingCore` calls, protos out. Failures are `ServingError`s
carrying TF Serving's status code and message, sent with `context.abort`.
"""

import asyncio
import functools
import time

from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    status_pb2,
)

from tfgen.serving import classification
from tfgen.serving import config as config_lib
from tfgen.serving.errors import TF_ERROR_CODE, ServingError, invalid_argument, unimplemented
from tfgen.serving.signatures import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    REGRESS_METHOD,
    check_example_method,
    example_api_unsupported,
)
from tfgen.serving.tensors import ndarray_to_proto


# Requests or responses above this size are converted on a worker thread, so the event
# loop keeps answering (health checks included) while a large tensor is decoded.
OFFLOAD_BYTES = 1 << 20


async def offload(size, fn, *args, threshold=OFFLOAD_BYTES):
    if size < threshold:
        return fn(*args)
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def predict_response(call, outputs):
    response = predict_pb2.PredictResponse()
    set_model_spec(response.model_spec, call.servable.name, call.servable.version,
                   call.signature_name)
    for alias in call.output_names:
        response.outputs[alias].CopyFrom(ndarray_to_proto(outputs[alias]))
    return response


def status_proto(error):
    if error is None:
        return status_pb2.StatusProto(error_code=0)
    return status_pb2.StatusProto(error_code=TF_ERROR_CODE[error.code], error_message=error.message)


def set_model_spec(spec, name, version, signature_name=None):
    spec.name = name
    spec.version.value = version
    if signature_name is not None:
        spec.signature_name = signature_name


class _Calls:
    """Shared wrapper: deadline, metrics, ServingError -> gRPC status."""

    def __init__(self, core, metrics):
        self.core = core
        self.metrics = metrics

    async def handle(self, api, model_name, context, body):
        start = time.monotonic()
        status = "OK"
        try:
            with self.core.request():
                return await body()
        except ServingError as e:
            status = e.code.name
            await context.abort(e.code, e.message)
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        finally:
            if self.metrics:
                self.metrics.request(self.core.metric_label(model_name), api, "GRPC", status,
                                     time.monotonic() - start)

    @staticmethod
    def deadline(context):
        remaining = context.time_remaining()
        return None if remaining is None else time.monotonic() + remaining


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core, metrics=None):
        self.calls = _Calls(core, metrics)
        self.core = core

    async def Predict(self, request, context):
        async def body():
            call = await offload(
                request.ByteSize(),
                functools.partial(
                    self.core.predict,
                    request.model_spec,
                    output_filter=request.output_filter,
                    request_inputs=request.inputs,
                    deadline=self.calls.deadline(context),
                    loop=asyncio.get_running_loop(),
                ),
            )
            outputs = await call.outputs()
            size = sum(outputs[alias].nbytes for alias in call.output_names)
            return await offload(size, predict_response, call, outputs)

        return await self.calls.handle("Predict", request.model_spec.name, context, body)

    async def GetModelMetadata(self, request, context):
        async def body():
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            if not request.metadata_field:
                raise invalid_argument(
                    "GetModelMetadataRequest must specify at least one metadata_field"
                )
            for field in request.metadata_field:
                if field != "signature_def":
                    raise invalid_argument(f"Metadata field {field} is not supported")
            servable = self.core.servable(request.model_spec)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            set_model_spec(response.model_spec, servable.name, servable.version)
            response.metadata["signature_def"].Pack(servable.signature_def_map())
            return response

        return await self.calls.handle("GetModelMetadata", request.model_spec.name, context, body)

    async def _example_api(self, api, request, context):
        async def body():
            servable = self.core.servable(request.model_spec)
            check_example_method(servable.signature_defs, request.model_spec.signature_name, api)
            raise example_api_unsupported(api)

        return await self.calls.handle(api, request.model_spec.name, context, body)

    async def _classification(self, servable, model_spec, request_input, deadline):
        """Runs the classification signature `model_spec` names on `request_input`."""
        name = check_example_method(servable.signature_defs, model_spec.signature_name, "Classify")
        aliases = classification.check_classification_signature(servable.signature_defs[name])
        examples = classification.serialized_examples(request_input, self.core.limits.max_rows)
        spec = model_pb2.ModelSpec(name=model_spec.name, signature_name=name)
        spec.version.value = servable.version
        call = self.core.predict(spec, output_filter=aliases,
                                 arrays={classification.CLASSIFY_INPUTS: examples}, deadline=deadline,
                                 loop=asyncio.get_running_loop())
        outputs = await call.outputs()
        return name, classification.classification_result(outputs, len(examples))

    async def Classify(self, request, context):
        async def body():
            servable = self.core.servable(request.model_spec)
            name, result = await self._classification(servable, request.model_spec, request.input,
                                                      self.calls.deadline(context))
            response = classification_pb2.ClassificationResponse(result=result)
            set_model_spec(response.model_spec, servable.name, servable.version, name)
            return response

        return await self.calls.handle("Classify", request.model_spec.name, context, body)

    async def Regress(self, request, context):
        return await self._example_api("Regress", request, context)

    async def MultiInference(self, request, context):
        async def body():
            model_name, seen = "", set()
            for task in request.tasks:
                if not task.model_spec.name:
                    raise invalid_argument("Found ModelSpec with an empty model name.")
                if model_name and task.model_spec.name != model_name:
                    raise invalid_argument(
                        "All ModelSpecs in a MultiInferenceRequest must access the same "
                        "model name."
                    )
                model_name = task.model_spec.name
            if not request.tasks:
                raise invalid_argument("MultiInferenceRequest must have at least one task")
            servable = self.core.servable(request.tasks[0].model_spec)
            for task in request.tasks:
                name = task.model_spec.signature_name or DEFAULT_SIGNATURE
                if name in seen:
                    raise invalid_argument(f"Duplicate evaluation of signature: {name}")
                seen.add(name)
                if name not in servable.signature_defs:
                    raise invalid_argument(f"Requested signature not found in model graph: {name}")
                api = {CLASSIFY_METHOD: "Classify", REGRESS_METHOD: "Regress"}.get(task.method_name)
                if api is None:
                    raise unimplemented(f"Unsupported signature method_name: {task.method_name}")
                check_example_method(servable.signature_defs, name, api)
            if any(task.method_name == REGRESS_METHOD for task in request.tasks):
                raise example_api_unsupported("Regress")
            response = inference_pb2.MultiInferenceResponse()
            deadline = self.calls.deadline(context)
            for task in request.tasks:  # every task on the request's one input
                spec = model_pb2.ModelSpec()
                spec.CopyFrom(task.model_spec)
                spec.version.value = servable.version
                name, result = await self._classification(servable, spec, request.input, deadline)
                entry = response.results.add(classification_result=result)
                set_model_spec(entry.model_spec, servable.name, servable.version, name)
            return response

        name = request.tasks[0].model_spec.name if request.tasks else ""
        return await self.calls.handle("MultiInference", name, context, body)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core, metrics=None):
        self.calls = _Calls(core, metrics)
        self.core = core

    async def GetModelStatus(self, request, context):
        async def body():
            return model_status_response(self.core, request)

        return await self.calls.handle("GetModelStatus", request.model_spec.name, context, body)

    async def HandleReloadConfigRequest(self, request, context):
        response = model_management_pb2.ReloadConfigResponse()
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise invalid_argument(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                    "ModelConfigList is currently supported"
                )
            configs = config_lib.model_configs_from_proto(request.config)
            loop = asyncio.get_running_loop()
            # Blocks until the new models load, as TF Serving's reload does.
            await loop.run_in_executor(None, self.core.manager.set_configs, configs)
        except ValueError as e:
            error = invalid_argument(str(e))
        except ServingError as e:
            error = e
        else:
            response.status.CopyFrom(status_proto(None))
            return response
        response.status.CopyFrom(status_proto(error))
        await context.abort(error.code, error.message)


def model_status_response(core, request):
    """GetModelStatusResponse for a request (shared with the REST status endpoint)."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    spec = request.model_spec
    version = spec.version.value if spec.HasField("version") else None
    if spec.version_label:
        version = core.servable(spec).version
    response = get_model_status_pb2.GetModelStatusResponse()
    for v, state, error in core.manager.version_status(spec.name, version):
        status = response.model_version_status.add(version=v, state=state)
        status.status.CopyFrom(status_proto(error))
    return response


def add_services(server, core, metrics=None):
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(core, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core, metrics), server)

