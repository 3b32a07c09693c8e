"""Loader checks that run in a child process importing only TensorFlow.

`tfgen.export.conformance` runs this file as a script (`python -P standalone.py
KIND[,KIND...] PATH CONTRACT_JSON`) so the child never imports tfgen or TensorFlow
Probability: an export must be usable by anyone holding TensorFlow alone. One child runs
every kind it is given, one after the other: importing TensorFlow costs a child about
5 CPU-seconds, most of what a small model's checks cost. Nothing here may import tfgen:
what the export must answer comes in as CONTRACT_JSON, `{"signatures":
tfgen.contract.signature_plan(...), "aliases": {"serving_default": "sample"}}`.

Kinds:
  load     `tf.saved_model.load` + every signature, and the graph holds only ops that
           core TensorFlow registers (no PyFunc/EagerPyFunc, no custom ops);
  session  the TF1 Session loader (`tf.compat.v1.saved_model.loader.load`, tags
           ['serve']), the path TF Serving's C++ loader takes: every SignatureDef run
           by tensor names, then every warmup request replayed.

For each kind the child prints one line `RESULT_MARKER + json`, `{"kind": KIND,
"checks": [{"name", "ok", "detail"}, ...]}`.
"""

import json
import os
import sys

RESULT_MARKER = "TFGEN_CHECK_RESULT "
METADATA = os.path.join("assets.extra", "tfgen.json")
WARMUP = os.path.join("assets.extra", "tf_serving_warmup_requests")
#: Op types that call back into Python: a server without the exporting process can't run them.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
#: Rows fed to every signature, and the first row's seed.
BATCH = 3
FIRST_SEED = 11


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


def example_requests(plan, rows, first_seed, call, omit_defaults=False):
    """Makes example rows for every signature of `plan` and calls it, in plan order.

    Yields `(signature, inputs, outputs)`, where `outputs` is `{output: np.ndarray}` or
    the exception the call raised. An input's `example` rule (`tfgen.contract.Example`)
    says how its rows are made: the seeds `first_seed .. first_seed + rows - 1`, the
    classes `seed % num_classes`, one value in every row, or an earlier signature's
    output (samples -> x, codes -> z). The warmup requests of an export and the
    conformance checks both come from here.

    Args:
      plan: `tfgen.contract.signature_plan(...)` (plain JSON data).
      rows: batch size.
      first_seed: the first row's seed.
      call: `(signature, {input: np.ndarray}) -> {output: np.ndarray}`.
      omit_defaults: leave out the inputs whose example is their default (the request a
        default serves, at the same cost; a short example `length` stays in).
    """
    import numpy as np

    seeds = np.arange(first_seed, first_seed + rows, dtype=np.int64)
    returned = {}
    for entry in plan:
        inputs = {}
        try:
            for spec in entry["inputs"]:
                if omit_defaults and spec["example"] == ["fill", spec["default"]]:
                    continue
                kind, *value = spec["example"]
                if kind == "seeds":
                    array = seeds
                elif kind == "classes":
                    array = seeds % value[0]
                elif kind == "fill":
                    array = np.full([rows], value[0])
                elif kind == "output_or_normal" and not any(e["name"] == value[0][0] for e in plan):
                    shape = [rows] + [d for d in spec["shape"][1:]]
                    array = np.random.default_rng(first_seed).standard_normal(shape)
                elif kind in ("output", "output_or_normal", "examples"):
                    source, output = value[0]
                    if source not in returned:
                        raise LookupError(f"input {spec['name']!r} needs {source}/{output}, and {source} failed")
                    array = returned[source][output]
                    if kind == "examples":
                        array = _serialized_examples(array)
                else:
                    raise ValueError(f"input {spec['name']!r}: unknown example kind {kind!r}")
                inputs[spec["name"]] = np.asarray(array, dtype=spec["dtype"] if spec["dtype"] != "string" else object)
            outputs = call(entry["name"], inputs)
        except Exception as e:  # noqa: BLE001  (reported by the caller, per signature)
            yield entry["name"], inputs, e
            continue
        returned[entry["name"]] = outputs
        yield entry["name"], inputs, outputs


def _serialized_examples(rows):
    """Each row flattened into a serialized `tf.train.Example` (float_list feature `x`)."""
    from tensorflow.core.example import example_pb2

    serialized = []
    for row in rows:
        example = example_pb2.Example()
        example.features.feature["x"].float_list.value.extend(row.reshape(-1).tolist())
        serialized.append(example.SerializeToString())
    return serialized


def exercise(call, contract):
    """Calls every signature of the contract on example rows and checks what comes
    back; returns checks.

    `call(signature, feeds) -> {output: np.ndarray}`. Every output must have the plan's
    dtype and shape (`BATCH` rows), floats must be finite, and constant outputs (the
    description) must hold the plan's values. An alias (serving_default) is called with
    the same rows as its signature; signatures with defaulted inputs are called once
    more without them, to prove the defaults.
    """
    plan = contract["signatures"]
    checks = []
    for name, inputs, outputs in example_requests(plan, BATCH, FIRST_SEED, call):
        entry = next(e for e in plan if e["name"] == name)
        checks.append(_outputs_check(name, entry, outputs))
        for alias in sorted(a for a, target in contract["aliases"].items() if target == name):
            checks.append(_outputs_check(alias, entry, _call_or_error(call, alias, inputs)))
        defaulted = {i["name"] for i in entry["inputs"] if i["default"] is not None}
        if defaulted and isinstance(outputs, dict):
            required = {k: v for k, v in inputs.items() if k not in defaulted}
            checks.append(_outputs_check(f"{name} (defaults)", entry, _call_or_error(call, name, required)))
    return checks


def _call_or_error(call, name, inputs):
    try:
        return call(name, inputs)
    except Exception as e:  # noqa: BLE001
        return e


def _outputs_check(label, entry, outputs):
    """Outputs have the plan's names, dtypes, shapes and values, and floats are finite."""
    import numpy as np

    if isinstance(outputs, Exception):
        return _check(label, False, _one_line(outputs))
    problems = []
    expected = {o["name"]: o for o in entry["outputs"]}
    if set(outputs) != set(expected):
        problems.append(f"outputs {sorted(outputs)}, the contract says {sorted(expected)}")
    for key, value in outputs.items():
        spec = expected.get(key)
        if spec is None:
            continue
        shape = [BATCH] + spec["shape"][1:]
        kind = "S" if spec["dtype"] == "string" else np.dtype(spec["dtype"]).kind
        fits = len(value.shape) == len(shape) and all(d in (-1, v) for d, v in zip(shape, value.shape))
        if not fits or (value.dtype.kind in "SOU") != (kind == "S") or (
                kind != "S" and value.dtype != np.dtype(spec["dtype"])):
            problems.append(f"{key} is {value.dtype}{list(value.shape)}, expected {spec['dtype']}{shape}")
        elif kind == "f" and not np.all(np.isfinite(value)):
            problems.append(f"{key} not finite")
        elif "value" in spec:
            rows = [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
            if any(row != spec["value"] for row in rows):
                problems.append(f"{key} is {rows[0]!r}, tfgen.json says {spec['value']!r}")
    if problems:
        return _check(label, False, "; ".join(problems))
    return _check(label, True, ", ".join(f"{k}{list(v.shape)}" for k, v in sorted(outputs.items())))


def _check(name, ok, detail=""):
    return {"name": name, "ok": bool(ok), "detail": detail}


def _one_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def check_load(path, contract):
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

    checks = exercise(call, contract)
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


def check_session(path, contract):
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

        checks = exercise(call, contract)
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
    kinds, path, contract = argv
    for kind in kinds.split(","):
        try:
            checks = KINDS[kind](path, json.loads(contract))
        except Exception as e:  # noqa: BLE001  (a failed load is a result, not a crash)
            checks = [_check(f"{kind} loader", False, _one_line(e))]
        print(RESULT_MARKER + json.dumps({"kind": kind, "checks": checks}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main(sys.argv[1:])
