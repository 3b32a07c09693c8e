"""`tfgen serve`: TF Serving's flags, tfgen's safe defaults. Wiring only."""

import os

DEFAULT_MODEL_DIR = "saved_models"


def register(subparsers):
    p = subparsers.add_parser(
        "serve",
        help="serve SavedModels over TF Serving's gRPC and REST APIs",
        description=(
            "Serve SavedModels with TF Serving's gRPC (tensorflow.serving.PredictionService, "
            "ModelService) and REST (/v1/models/...) APIs. Flag names follow "
            "tensorflow_model_server. With no model flags, every model directory under "
            f"./{DEFAULT_MODEL_DIR} is served (latest version)."
        ),
    )
    p.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500; 0 = any free)")
    p.add_argument("--rest_api_port", type=int, default=8501,
                   help="REST port (default 8501; 0 = any free; -1 = no REST)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 exposes the server)")
    p.add_argument("--model_name", help="name of the one model to serve (with --model_base_path)")
    p.add_argument("--model_base_path", help="directory holding the model's version directories")
    p.add_argument("--model_config_file", help="ModelServerConfig text proto (models.config)")
    p.add_argument("--model_dir", default=DEFAULT_MODEL_DIR,
                   help=f"serve every model under this directory (default ./{DEFAULT_MODEL_DIR})")
    p.add_argument("--enable_batching", action="store_true", help="batch concurrent requests")
    p.add_argument("--batching_parameters_file",
                   help="BatchingParameters text proto (implies --enable_batching)")
    p.add_argument("--monitoring_config_file",
                   help="MonitoringConfig text proto (prometheus_config { enable path })")
    p.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                   help="seconds between polls for new versions (0 = load once)")
    p.add_argument("--ssl_config_file", help="SSLConfig text proto: TLS on the gRPC port")
    p.add_argument("--max_request_bytes", type=int, default=64 * 1024 * 1024,
                   help="largest gRPC message or REST body accepted (default 64 MiB)")
    p.add_argument("--max_tensor_elements", type=int, default=16 * 1024 * 1024,
                   help="largest tensor accepted, checked before decoding (default 16M)")
    p.add_argument("--max_rows_per_request", type=int, default=4096,
                   help="largest batch dimension accepted per request (default 4096)")
    p.add_argument("--allow_nonfinite_inputs", action="store_true",
                   help="accept NaN/Inf in float inputs (rejected by default)")
    p.add_argument("--runtime_threads", type=int, default=max(2, os.cpu_count() or 1),
                   help="threads running unbatched requests")
    p.add_argument("--grace_seconds", type=float, default=30.0,
                   help="on SIGTERM, how long in-flight requests may take to finish")
    p.add_argument("--drain_delay_seconds", type=float, default=0.0,
                   help="on SIGTERM, report unhealthy this long before closing the ports")
    p.add_argument("--rest_api_timeout_in_ms", type=int, default=30000,
                   help="deadline of a REST request (default 30000, as TF Serving)")
    p.add_argument("--no_warmup", action="store_true",
                   help="skip replaying assets.extra/tf_serving_warmup_requests")
    p.set_defaults(func=run)
    return p


def check_paths(args):
    """A mistyped path answers at once, before TensorFlow is imported."""
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file",
                 "ssl_config_file"):
        path = getattr(args, flag)
        if path and not os.path.isfile(path):
            raise FileNotFoundError(f"--{flag} {path} does not exist")
    if args.model_base_path and not os.path.isdir(args.model_base_path):
        raise FileNotFoundError(f"--model_base_path {args.model_base_path} does not exist")
    if not (args.model_config_file or args.model_base_path) and not os.path.isdir(args.model_dir):
        raise FileNotFoundError(
            f"model directory {args.model_dir} does not exist (serve a model with "
            "--model_name/--model_base_path or --model_config_file)"
        )


def build_options(args):
    """argparse namespace -> ServerOptions (reads the config files)."""
    from tfgen.errors import UserError

    check_paths(args)
    from tfgen.serving import config as config_lib
    from tfgen.serving.batching import BatchingParameters
    from tfgen.serving.model_manager import ModelConfig
    from tfgen.serving.server import ServerOptions
    from tfgen.serving.signatures import InputLimits

    if args.model_config_file and (args.model_name or args.model_base_path):
        raise UserError("use either --model_config_file or --model_name/--model_base_path")
    if args.model_config_file:
        models = config_lib.read_model_config_file(args.model_config_file)
    elif args.model_base_path:
        name = args.model_name or "default"  # TF Serving's default model name
        models = [ModelConfig(name=name, base_path=os.path.abspath(args.model_base_path))]
    elif args.model_name:
        raise UserError("--model_name needs --model_base_path")
    else:
        models = config_lib.discover_models(args.model_dir)
    batching = None
    if args.batching_parameters_file:
        batching = config_lib.read_batching_parameters_file(args.batching_parameters_file)
    elif args.enable_batching:
        batching = BatchingParameters()
    prometheus_path = config_lib.DEFAULT_PROMETHEUS_PATH
    if args.monitoring_config_file:
        enabled, path = config_lib.read_monitoring_config_file(args.monitoring_config_file)
        prometheus_path = path if enabled else None
    ssl_config = None
    if args.ssl_config_file:
        ssl_config = config_lib.read_ssl_config_file(args.ssl_config_file)
    return ServerOptions(
        models=models,
        host=args.host,
        port=args.port,
        rest_api_port=None if args.rest_api_port < 0 else args.rest_api_port,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        batching=batching,
        limits=InputLimits(
            max_tensor_elements=args.max_tensor_elements,
            max_rows=args.max_rows_per_request,
            allow_nonfinite=args.allow_nonfinite_inputs,
        ),
        max_message_bytes=args.max_request_bytes,
        prometheus_path=prometheus_path,
        ssl_config=ssl_config,
        runtime_threads=args.runtime_threads,
        grace_seconds=args.grace_seconds,
        drain_delay_seconds=args.drain_delay_seconds,
        warmup=not args.no_warmup,
        rest_api_timeout_seconds=args.rest_api_timeout_in_ms / 1000,
    )


def _example_instance(signature):
    """One row for the signature's required inputs, if each is a scalar per row."""
    from tensorflow.core.framework import types_pb2

    row = {}
    for alias, info in signature.inputs.items():
        if alias in signature.defaults:
            continue
        dims = [d.size for d in info.tensor_shape.dim]
        if dims != [-1]:
            return None
        if info.dtype in (types_pb2.DT_INT32, types_pb2.DT_INT64):
            row[alias] = 0
        elif info.dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
            row[alias] = 0.0
        else:
            return None
    return row


def ready_line(server):
    """One line saying where the server listens, with a request to try."""
    import json

    o = server.options
    names = server.manager.model_names()
    line = (
        f"tfgen serve: ready: {len(names)} model(s) {', '.join(names)}; "
        f"gRPC {o.host}:{server.grpc_port}"
    )
    if not server.rest_port:
        return line
    base = f"http://{o.host}:{server.rest_port}"
    line += f"; REST {base} -- try: curl {base}/v1/models/{names[0]}/metadata"
    for name in names:
        signature = server.manager.servable(name).signatures.get("sample")
        row = _example_instance(signature) if signature else None
        if row is not None:
            body = json.dumps({"signature_name": "sample", "instances": [row]})
            line += f" ; curl -d '{body}' {base}/v1/models/{name}:predict"
            break
    return line


def run(args):
    import logging

    check_paths(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from tfgen.serving.server import ModelServer

    options = build_options(args)
    server = ModelServer(options)
    server.serve(on_ready=lambda s: print(ready_line(s), flush=True))
    return 0
