"""Loader checks that run in a child process importing only TensorFlow.

`tfgen.export.conformance` runs this file as a script (`python -P standalone.py KIND
PATH`) so the child never imports tfgen or TensorFlow Probability: an export must be
usable by anyone holding TensorFlow alone. Nothing here may import tfgen.

Kinds:
  load     `tf.saved_model.load` + every signature, and the graph holds only ops that
           core TensorFlow registers (no PyFunc/EagerPyFunc, no custom ops);
  session  the TF1 Session loader (`tf.compat.v1.saved_model.loader.load`, tags
           ['serve']), the path TF Serving's C++ loader takes: every SignatureDef run
           by tensor names, then every warmup request replayed.

The child prints one line `RESULT_MARKER + json` with a list of checks
`{"name", "ok", "detail"}`.
"""

import json
import os
import sys

RESULT_MARKER = "TFGEN_CHECK_RESULT "
METADATA = os.path.join("assets.extra", "tfgen.json")
WARMUP = os.path.join("assets.extra", "tf_serving_warmup_requests")
#: Op types that call back into Python: a server without the exporting process can't run them.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
#: Rows fed to every signature.
BATCH = 3
#: Signatures fed first, because their outputs feed the later ones (samples -> x, z).
ORDER = ("sample", "log_prob", "encode", "decode")


def read_warmup(path):
    """The warmup requests of the export at `path`: a list of (signature, {input: array})."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    # The v1 iterator works in graph mode too (the Session child runs without eager).
    for record in tf.compat.v1.io.tf_record_iterator(os.path.join(path, WARMUP)):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        requests.append((request.model_spec.signature_name, inputs))
    return requests


def read_signature_defs(path):
    """`{name: SignatureDef}` of the 'serve' MetaGraph, read from saved_model.pb."""
    from tensorflow.core.protobuf import saved_model_pb2

    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph, dict(meta_graph.signature_def)
    raise ValueError(f"{path}: no MetaGraph tagged 'serve'")


def _user_signatures(signature_defs):
    """Signature names a client calls (not the `__saved_model_init_op` bookkeeping one)."""
    names = [n for n in signature_defs if not n.startswith("__")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def exercise(call, signature_defs, metadata):
    """Calls every signature on real inputs; returns checks.

    `call(signature, feeds) -> {output: np.ndarray}`. Samples feed `x`, codes feed `z`,
    and `sample` is also called with only its required inputs to prove the defaults.
    """
    import numpy as np

    feeds = {
        "seed": np.arange(BATCH, dtype=np.int64) + 11,
        "temperature": np.full([BATCH], 0.9, np.float32),
    }
    num_classes = metadata["data_spec"].get("num_classes")
    if num_classes:
        feeds["condition"] = np.arange(BATCH, dtype=np.int32) % num_classes
    checks = []
    for name in _user_signatures(signature_defs):
        inputs = signature_defs[name].inputs
        missing = sorted(set(inputs) - set(feeds))
        if missing:
            checks.append(_check(name, False, f"no test input for {missing}"))
            continue
        checks.append(_run(name, call, {k: feeds[k] for k in inputs}, feeds))
    if "sample" in signature_defs:
        defaults = set(signature_defs["sample"].defaults)
        required = {k: feeds[k] for k in signature_defs["sample"].inputs if k not in defaults}
        checks.append(_run("sample (defaults)", call, required, {}, signature="sample"))
    return checks


def _run(label, call, inputs, feeds, signature=None):
    """One signature call; outputs must be finite and have BATCH rows."""
    import numpy as np

    try:
        outputs = call(signature or label, inputs)
    except Exception as e:  # noqa: BLE001  (any failure is the check's result)
        return _check(label, False, _one_line(e))
    bad = [k for k, v in outputs.items() if v.shape[:1] != (BATCH,) or not np.all(np.isfinite(v))]
    if bad:
        return _check(label, False, f"outputs {bad} not finite or not [{BATCH}, ...]")
    # Later signatures take these as inputs: samples -> x, codes -> z.
    if "samples" in outputs:
        feeds["x"] = outputs["samples"]
    if "z" in outputs:
        feeds["z"] = outputs["z"]
    shapes = ", ".join(f"{k}{list(v.shape)}" for k, v in sorted(outputs.items()))
    return _check(label, True, shapes)


def _check(name, ok, detail=""):
    return {"name": name, "ok": bool(ok), "detail": detail}


def _one_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def check_load(path, metadata):
    """`tf.saved_model.load` in this TF-only process, and the graph's op types."""
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    meta_graph, signature_defs = read_signature_defs(path)
    loaded = tf.saved_model.load(path)

    def call(name, feeds):
        # `loaded.signatures[...]` ignores SignatureDef.defaults in TF 2.21 (every input
        # is required); the restored tf.function attribute of the same name keeps them.
        complete = set(feeds) == set(signature_defs[name].inputs)
        function = loaded.signatures[name] if complete else getattr(loaded, name)
        outputs = function(**{k: tf.constant(v) for k, v in feeds.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    checks = exercise(call, signature_defs, metadata)
    op_types = {node.op for node in meta_graph.graph_def.node}
    for function in meta_graph.graph_def.library.function:
        op_types.update(node.op for node in function.node_def)
    # Ops of the functions the graph defines are calls, not kernels.
    op_types -= {f.signature.name for f in meta_graph.graph_def.library.function}
    python_ops = sorted(op_types & PYTHON_OPS)
    unknown = sorted(op for op in op_types - PYTHON_OPS if op_def_registry.get(op) is None)
    checks.append(_check(
        "core TF ops only",
        not python_ops and not unknown,
        f"{len(op_types)} op types" if not (python_ops or unknown)
        else f"python ops {python_ops}, unregistered ops {unknown}",
    ))
    leaked = sorted(m for m in ("tfgen", "tensorflow_probability") if m in sys.modules)
    checks.append(_check("process imported only TF", not leaked, f"imported {leaked}" if leaked else ""))
    return checks


def check_session(path, metadata):
    """The TF1 Session loader, as TF Serving loads a model, plus the warmup replay."""
    import tensorflow as tf

    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature_defs = dict(meta_graph.signature_def)

        def call(name, feeds):
            signature = signature_defs[name]
            unknown = sorted(set(feeds) - set(signature.inputs))
            if unknown:
                raise KeyError(f"signature {name!r} has no input(s) {unknown}")
            keys = sorted(signature.outputs)
            values = session.run(
                [signature.outputs[k].name for k in keys],
                {signature.inputs[k].name: v for k, v in feeds.items()},
            )
            return dict(zip(keys, values))

        checks = exercise(call, signature_defs, metadata)
        try:
            requests = read_warmup(path)
            for name, inputs in requests:
                call(name, inputs)
            checks.append(_check("warmup replay", bool(requests), f"{len(requests)} requests"))
        except Exception as e:  # noqa: BLE001
            checks.append(_check("warmup replay", False, _one_line(e)))
    return checks


KINDS = {"load": check_load, "session": check_session}


def main(argv):
    kind, path = argv
    with open(os.path.join(path, METADATA)) as f:
        metadata = json.load(f)
    try:
        checks = KINDS[kind](path, metadata)
    except Exception as e:  # noqa: BLE001  (a failed load is a result, not a crash)
        checks = [_check(f"{kind} loader", False, _one_line(e))]
    print(RESULT_MARKER + json.dumps(checks), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main(sys.argv[1:])
