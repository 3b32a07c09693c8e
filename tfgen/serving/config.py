"""TF Serving's configuration files, read as the same text protos.

- `--model_config_file`: a `ModelServerConfig` (from tensorflow-serving-api).
- `--batching_parameters_file`: a `BatchingParameters`,
- `--monitoring_config_file`: a `MonitoringConfig`,
- `--ssl_config_file`: an `SSLConfig`.

tensorflow-serving-api does not ship the last three protos, so they are declared here
with TF Serving's field names and parsed with protobuf's own text format parser; a file
written for `tensorflow_model_server` parses the same way here.
"""

import logging
import os

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfgen.errors import MissingPath, UserError
from tfgen.serving.batching import BatchingParameters
from tfgen.serving.model_manager import ModelConfig
from tfgen.versions import version_dirs

log = logging.getLogger("tfgen.serving")

_WRAPPERS = {
    "Int64Value": ".google.protobuf.Int64Value",
    "StringValue": ".google.protobuf.StringValue",
    "BoolValue": ".google.protobuf.BoolValue",
}
F = descriptor_pb2.FieldDescriptorProto


def _build_protos():
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tfgen/serving/tf_serving_configs.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
        syntax="proto3",
    )

    def message(name, fields):
        msg = fdp.message_type.add(name=name)
        for number, (field_name, kind, label) in enumerate(fields, start=1):
            field = msg.field.add(name=field_name, number=number, label=label)
            if kind in _WRAPPERS:
                field.type, field.type_name = F.TYPE_MESSAGE, _WRAPPERS[kind]
            elif isinstance(kind, str):
                field.type, field.type_name = F.TYPE_MESSAGE, kind
            else:
                field.type = kind

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("BatchingParameters", [
        ("max_batch_size", "Int64Value", opt),
        ("batch_timeout_micros", "Int64Value", opt),
        ("max_enqueued_batches", "Int64Value", opt),
        ("num_batch_threads", "Int64Value", opt),
        ("thread_pool_name", "StringValue", opt),
        ("allowed_batch_sizes", F.TYPE_INT64, rep),
        ("pad_variable_length_inputs", F.TYPE_BOOL, opt),
        ("enable_large_batch_splitting", "BoolValue", opt),
        ("max_execution_batch_size", "Int64Value", opt),
        ("batch_padding_policy", "StringValue", opt),
    ])
    message("PrometheusConfig", [("enable", F.TYPE_BOOL, opt), ("path", F.TYPE_STRING, opt)])
    message("MonitoringConfig", [
        ("prometheus_config", ".tensorflow.serving.PrometheusConfig", opt),
    ])
    message("SSLConfig", [
        ("server_key", F.TYPE_STRING, opt),
        ("server_cert", F.TYPE_STRING, opt),
        ("custom_ca", F.TYPE_STRING, opt),
        ("client_verify", F.TYPE_BOOL, opt),
    ])
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig", "SSLConfig")
    }


_PROTOS = _build_protos()
BatchingParametersProto = _PROTOS["BatchingParameters"]
MonitoringConfigProto = _PROTOS["MonitoringConfig"]
SSLConfigProto = _PROTOS["SSLConfig"]

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def _parse(path, message):
    with open(path) as f:
        text = f.read()
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise UserError(f"{path}: {e}") from None


def model_configs_from_proto(server_config):
    """ModelServerConfig proto -> [ModelConfig]."""
    configs = []
    for entry in server_config.model_config_list.config:
        if entry.model_platform not in ("", "tensorflow"):
            raise UserError(
                f"model {entry.name}: model_platform {entry.model_platform!r} is not supported "
                "(only 'tensorflow')"
            )
        if not entry.base_path:
            raise UserError(f"model {entry.name}: base_path is empty")
        policy = entry.model_version_policy.WhichOneof("policy_choice") or "latest"
        kwargs = {}
        if policy == "latest":
            kwargs["num_versions"] = entry.model_version_policy.latest.num_versions or 1
        elif policy == "specific":
            kwargs["versions"] = tuple(entry.model_version_policy.specific.versions)
        configs.append(
            ModelConfig(
                name=entry.name,
                base_path=entry.base_path,
                policy=policy,
                labels=dict(entry.version_labels),
                **kwargs,
            )
        )
    return configs


def read_model_config_file(path):
    return model_configs_from_proto(_parse(path, model_server_config_pb2.ModelServerConfig()))


def read_batching_parameters_file(path):
    proto = _parse(path, BatchingParametersProto())
    kwargs = {}
    for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                 "num_batch_threads", "thread_pool_name"):
        if proto.HasField(name):
            kwargs[name] = getattr(proto, name).value
    if proto.allowed_batch_sizes:
        kwargs["allowed_batch_sizes"] = tuple(proto.allowed_batch_sizes)
    kwargs["pad_variable_length_inputs"] = proto.pad_variable_length_inputs
    for name in ("enable_large_batch_splitting", "max_execution_batch_size"):
        if proto.HasField(name):
            kwargs[name] = getattr(proto, name).value
    if proto.HasField("batch_padding_policy"):
        log.warning("%s: batch_padding_policy is accepted but not used by tfgen's server", path)
    try:
        return BatchingParameters(**kwargs)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None


def read_monitoring_config_file(path):
    """-> (prometheus enabled, path)."""
    proto = _parse(path, MonitoringConfigProto())
    prometheus = proto.prometheus_config
    return prometheus.enable, prometheus.path or DEFAULT_PROMETHEUS_PATH


def read_ssl_config_file(path):
    return _parse(path, SSLConfigProto())


def discover_models(root):
    """A ModelConfig (latest version) for every model directory under root."""
    if not os.path.isdir(root):
        raise MissingPath(f"model directory {root} does not exist")
    configs = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith(".") and version_dirs(entry.path):
            configs.append(ModelConfig(name=entry.name, base_path=os.path.abspath(entry.path)))
    if not configs:
        raise MissingPath(
            f"no models under {root}: expected {root}/<name>/<version>/saved_model.pb"
        )
    return configs
