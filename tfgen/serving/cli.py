"""`tfgen serve`: TF Serving's flags with TF Serving's meanings, tfgen's safe defaults.

Wiring only. The flags are checked before TensorFlow is imported, so a mistake answers
at once.
"""

import argparse
import os
import sys

from tfgen.errors import MissingPath, UserError

DEFAULT_MODEL_DIR = "saved_models"
MAX_PORT = 65535


def tf_bool(text):
    """A boolean flag's value as TF's flag parser reads it: true/false (any case), 1/0."""
    value = text.lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_bool(group, flag, default, help):
    # `--flag`, `--flag=true` and `--flag=false`, as tensorflow_model_server takes them.
    group.add_argument(flag, nargs="?", const=True, default=default, type=tf_bool,
                       metavar="true|false", help=f"{help} (default {str(default).lower()})")


def register(subparsers):
    p = subparsers.add_parser(
        "serve",
        help="serve SavedModels over TF Serving's gRPC and REST APIs",
        description=(
            "Serve SavedModels with TF Serving's gRPC (tensorflow.serving.PredictionService, "
            "ModelService) and REST (/v1/models/...) APIs. With no model flags, every model "
            f"directory under ./{DEFAULT_MODEL_DIR} is served (latest version)."
        ),
    )
    tf_flags = p.add_argument_group(
        "tensorflow_model_server's flags", "same names, values and meanings as TF Serving's"
    )
    tf_flags.add_argument("--port", type=int, default=8500, metavar="PORT",
                          help="gRPC port (default 8500). TF Serving's 0 turns gRPC off, which "
                               "tfgen serve cannot do: 0 is refused")
    tf_flags.add_argument("--rest_api_port", type=int, default=8501, metavar="PORT",
                          help="REST port, also serving metrics and /healthz, /readyz; 0 = no REST "
                               "API (default 8501, where tensorflow_model_server's default is 0)")
    tf_flags.add_argument("--model_name", metavar="NAME",
                          help="name of the one model to serve, with --model_base_path (default "
                               "'default')")
    tf_flags.add_argument("--model_base_path", metavar="DIR",
                          help="directory holding the model's version directories")
    tf_flags.add_argument("--model_config_file", metavar="FILE",
                          help="ModelServerConfig text proto (models.config); instead of "
                               "--model_name/--model_base_path, not with them")
    _add_bool(tf_flags, "--enable_batching", False, "batch concurrent requests")
    tf_flags.add_argument("--batching_parameters_file", metavar="FILE",
                          help="BatchingParameters text proto used by --enable_batching; refused "
                               "without --enable_batching, as TF Serving refuses it")
    tf_flags.add_argument("--monitoring_config_file", metavar="FILE",
                          help="MonitoringConfig text proto (prometheus_config { enable path }); "
                               "without it no metrics are served, as in TF Serving")
    tf_flags.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                          metavar="SECONDS",
                          help="seconds between polls for new versions (default 1; 0 = load once)")
    tf_flags.add_argument("--ssl_config_file", metavar="FILE",
                          help="SSLConfig text proto: TLS on the gRPC port")
    tf_flags.add_argument("--rest_api_timeout_in_ms", type=int, default=30000, metavar="MS",
                          help="deadline of a REST request (default 30000)")
    _add_bool(tf_flags, "--enable_model_warmup", True,
              "replay assets.extra/tf_serving_warmup_requests before a version serves")
    tf_flags.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0, metavar="N",
                          help="threads of TensorFlow's pool for the work inside one op (default "
                               "0: TensorFlow's choice, one per core)")
    tf_flags.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0, metavar="N",
                          help="threads of TensorFlow's pool running independent ops (default 0: "
                               "TensorFlow's choice)")
    own = p.add_argument_group("tfgen serve's own flags")
    own.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                           help="address both ports bind (default 127.0.0.1; 0.0.0.0 exposes the server)")
    own.add_argument("--model_dir", default=DEFAULT_MODEL_DIR, metavar="DIR",
                           help=f"serve every model under this directory (default ./{DEFAULT_MODEL_DIR})")
    own.add_argument("--max_request_bytes", type=int, default=64 * 1024 * 1024,
                           metavar="BYTES",
                           help="largest gRPC message or REST body accepted (default 64 MiB)")
    own.add_argument("--max_tensor_elements", type=int, default=16 * 1024 * 1024,
                           metavar="N",
                           help="largest tensor accepted, checked before decoding (default 16M)")
    own.add_argument("--max_rows_per_request", type=int, default=4096, metavar="N",
                           help="largest batch dimension accepted per request (default 4096)")
    _add_bool(own, "--allow_nonfinite_inputs", False, "accept NaN/Inf in float inputs")
    own.add_argument("--runtime_threads", type=int, default=max(2, os.cpu_count() or 1),
                           metavar="N",
                           help="threads running unbatched requests (default: CPU count, at least 2)")
    own.add_argument("--grace_seconds", type=float, default=30.0, metavar="SECONDS",
                           help="on SIGTERM, how long in-flight requests may take to finish (default 30)")
    own.add_argument("--drain_delay_seconds", type=float, default=0.0, metavar="SECONDS",
                           help="on SIGTERM, report unhealthy this long before closing the ports "
                                "(default 0)")
    own.add_argument("--rest_max_connections", type=int, default=None, metavar="N",
                     help="open REST connections allowed at once; more are closed as they "
                          "arrive (default: half the file descriptor limit, at most 1024)")
    own.add_argument("--rest_read_timeout_seconds", type=float, default=30.0, metavar="SECONDS",
                     help="a REST connection must deliver a complete request (headers and "
                          "body) this soon after opening or after its last answer, or it is "
                          "closed (default 30; 0 = no limit)")
    own.add_argument("--rest_allowed_hosts", default="", metavar="NAME[,NAME...]",
                     help="Host header names REST accepts besides localhost/127.0.0.1/::1 "
                          "when bound to loopback (DNS rebinding guard); '*' accepts any")
    own.add_argument("--max_concurrent_loads", type=int, default=None, metavar="N",
                     help="models loading and warming up at once (default: one per CPU, "
                          "at most 4; the largest graphs start first)")
    _add_bool(own, "--quick_warmup", True,
              "warm up each version with Grappler off, so it serves sooner, then re-warm it "
              "Grappler-optimized in the background and switch to that (answers agree to "
              "float32 rounding); false: warm up optimized before serving")
    _add_bool(own, "--load_signatures_only", True,
              "load only the functions and variables the signatures use, called by name "
              "(the same answers, bit for bit, for about a tenth of the load's CPU); "
              "exports this cannot load (TF1 graphs, lookup tables, assets) and every "
              "export with false: tf.saved_model.load")
    p.set_defaults(func=run)
    return p


# flag -> (smallest value, what it means), checked before TensorFlow is imported.
_AT_LEAST = {
    "max_request_bytes": (1, "bytes"),
    "max_tensor_elements": (1, "elements"),
    "max_rows_per_request": (1, "rows"),
    "runtime_threads": (1, "threads"),
    "rest_api_timeout_in_ms": (1, "milliseconds"),
    "rest_max_connections": (1, "connections"),
    "max_concurrent_loads": (1, "models"),
    "file_system_poll_wait_seconds": (0, "seconds"),
    "grace_seconds": (0, "seconds"),
    "drain_delay_seconds": (0, "seconds"),
    "rest_read_timeout_seconds": (0, "seconds"),
    "tensorflow_intra_op_parallelism": (0, "threads; 0: TensorFlow's choice"),
    "tensorflow_inter_op_parallelism": (0, "threads; 0: TensorFlow's choice"),
}


def check_args(args):
    """Flag values and paths that cannot work, refused before TensorFlow is imported."""
    if not 1 <= args.port <= MAX_PORT:
        raise UserError(f"--port must be 1..{MAX_PORT}, got {args.port}"
                              + (" (0 turns gRPC off in TF Serving; tfgen serve always serves gRPC)"
                                 if args.port == 0 else ""))
    if not 0 <= args.rest_api_port <= MAX_PORT:
        raise UserError(f"--rest_api_port must be 0 (no REST API) or 1..{MAX_PORT}, "
                              f"got {args.rest_api_port}")
    if args.rest_api_port == args.port:
        raise UserError(f"--rest_api_port and --port are both {args.port}: give REST its own "
                              "port, or --rest_api_port 0 for none")
    for flag, (least, unit) in _AT_LEAST.items():
        value = getattr(args, flag)
        if value is not None and not value >= least:  # `not >=` also refuses NaN
            raise UserError(f"--{flag} must be at least {least} ({unit}), got {value}")
    if args.batching_parameters_file and not args.enable_batching:
        raise UserError("--batching_parameters_file is set without --enable_batching: add "
                              "--enable_batching to batch (TF Serving refuses this combination too)")
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file",
                 "ssl_config_file"):
        path = getattr(args, flag)
        if path and not os.path.isfile(path):
            raise MissingPath(f"--{flag} {path} does not exist")
    if args.model_base_path and not os.path.isdir(args.model_base_path):
        raise MissingPath(f"--model_base_path {args.model_base_path} does not exist")
    if not (args.model_config_file or args.model_base_path) and not os.path.isdir(args.model_dir):
        raise MissingPath(
            f"model directory {args.model_dir} does not exist (serve a model with "
            "--model_name/--model_base_path or --model_config_file)"
        )


def build_options(args):
    """Checked argparse namespace -> ServerOptions (reads the config files)."""
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
        # TF Serving's batching defaults; it names the thread pool this way without a file.
        batching = BatchingParameters(thread_pool_name="model_server_batch_threads")
    prometheus_path = None  # as TF Serving: metrics only with a monitoring config
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
        rest_api_port=args.rest_api_port or None,  # TF Serving's 0: no REST API
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
        warmup=args.enable_model_warmup,
        rest_api_timeout_seconds=args.rest_api_timeout_in_ms / 1000,
        rest_read_timeout_seconds=args.rest_read_timeout_seconds,
        rest_max_connections=args.rest_max_connections,
        **({"max_concurrent_loads": args.max_concurrent_loads}
           if args.max_concurrent_loads else {}),
        quick_warmup=args.quick_warmup,
        load_signatures_only=args.load_signatures_only,
        rest_allowed_hosts=tuple(h.strip() for h in args.rest_allowed_hosts.split(",") if h.strip()),
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
    waiting = server.manager.unavailable_models()
    names = [n for n in server.manager.model_names() if n not in waiting]
    line = f"tfgen serve: ready: {len(names)} model(s) {', '.join(names) or '(none yet)'}"
    if waiting:
        line += f" (not yet available: {', '.join(waiting)})"
    line += f"; gRPC {o.host}:{server.grpc_port}"
    if not server.rest_port:
        return line + "; no REST API (--rest_api_port 0)"
    base = f"http://{o.host}:{server.rest_port}"
    line += f"; REST {base}"
    if not names:
        return line
    line += f" -- try: curl {base}/v1/models/{names[0]}/metadata"
    for name in names:
        signature = server.manager.servable(name).signatures.get("sample")
        row = _example_instance(signature) if signature else None
        if row is not None:
            body = json.dumps({"signature_name": "sample", "instances": [row]})
            line += f" ; curl -d '{body}' {base}/v1/models/{name}:predict"
            break
    return line


def skip_keras_import():
    """Keeps Keras out of a server process that has not imported TensorFlow yet.

    `import tensorflow` imports a Keras eagerly only so that Keras optimizers register
    themselves for SavedModel loading: Keras 3 (with matplotlib and scikit-learn, about
    40% of TensorFlow's import time), or tf_keras under TF_USE_LEGACY_KERAS, which the
    `tfgen` package sets (about 0.5 s of a 4 s start-up, docs/benchmarks.md). A server
    calls signature functions (`tfgen.serving.loader`), which need no Keras class;
    `tf.keras` and `tf_keras` are then unavailable in this process. TFGEN_SERVE_KERAS=1
    keeps the import.
    """
    if "tensorflow" not in sys.modules and os.environ.get("TFGEN_SERVE_KERAS") != "1":
        for name in ("keras", "tf_keras"):
            sys.modules.setdefault(name, None)


def run(args):
    import logging

    check_args(args)
    skip_keras_import()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import tensorflow as tf  # not tfgen.backend: a server needs neither Keras nor TFP

    from tfgen.serving.server import ModelServer

    # Before any op runs: TensorFlow sizes its pools once, when its context starts.
    tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
    tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)

    options = build_options(args)
    server = ModelServer(options)
    server.serve(on_ready=lambda s: print(ready_line(s), flush=True))
    return 0
