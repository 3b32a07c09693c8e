"""Does an export keep the SavedModel contract (docs/architecture.md, "The SavedModel
contract")?

`check_export(path)` runs, in two fresh processes at once:

  (a) `tf.saved_model.load` in a process that never imports tfgen or TFP, calling every
      signature, and checking the graph holds only ops core TF registers;
  (b) then, in the same process, the TF1 Session loader with tags ['serve'] (TF
      Serving's C++ loader path), running every SignatureDef by tensor names and
      replaying the warmup requests;
  (c) `saved_model_cli run ... --signature_def sample --input_exprs 'seed=...'`;

and, from saved_model.pb in this process, that the signatures are exactly the ones the
contract table (`tfgen.contract.SIGNATURES`) gives a model with the capabilities
tfgen.json records: names, dtypes, shapes batched on dim 0, defaults. The children get
that resolved table as JSON on their command line, so they need no tfgen to know what
to call and what must come back.

Example:

    report = check_export("saved_models/digits_realnvp/1")
    print(report.table())
    assert report.ok
"""

import dataclasses
import json
import os
import subprocess
import sys

from tfgen.contract import DEFAULT_SIGNATURE, SERVING_DEFAULT, Capabilities, signature_plan
from tfgen.errors import MissingPath
from tfgen.export import standalone

#: Seconds one child process may take (TF start is ~5 s, loading and calls a few more each).
TIMEOUT = 300
_CLI_ROWS = 4


@dataclasses.dataclass(frozen=True)
class Check:
    """One conformance check: `stage` groups checks (static, load, session, cli)."""

    stage: str
    name: str
    ok: bool
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class Report:
    """Every check run on the export at `path`; `ok` if all passed."""

    path: str
    checks: tuple

    @property
    def ok(self):
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self):
        return [c for c in self.checks if not c.ok]

    def table(self):
        """A plain-text table, one line per check."""
        width = max(len(f"{c.stage}: {c.name}") for c in self.checks)
        lines = [f"conformance of {self.path}"]
        for c in self.checks:
            label = f"{c.stage}: {c.name}"
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {label:<{width}}  {c.detail}")
        lines.append(f"{'PASSED' if self.ok else 'FAILED'}: {len(self.checks) - len(self.failures)}"
                     f"/{len(self.checks)} checks")
        return "\n".join(lines)


def check_export(path):
    """Runs every conformance check on the version directory `path`; returns a `Report`."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise MissingPath(f"{path} is not a SavedModel version directory (no saved_model.pb)")
    if not os.path.isfile(os.path.join(path, standalone.METADATA)):
        raise MissingPath(f"{path} has no {standalone.METADATA}: not a tfgen export (`tfgen check` checks "
                          "the tfgen SavedModel contract)")
    with open(os.path.join(path, standalone.METADATA)) as f:
        metadata = json.load(f)
    try:
        contract = expected_contract(metadata)
    except ValueError as e:
        return Report(path=path, checks=(Check("static", "tfgen.json", False, str(e)),))
    processes = {"loaders": _start_child(standalone.KINDS, path, contract), "cli": _start_cli(path, contract)}
    try:
        checks = list(static_checks(path, contract, metadata))
        checks += _finish_loaders(processes["loaders"], standalone.KINDS)
        checks += _finish_cli(processes["cli"])
    finally:
        for process in processes.values():  # on an interrupt, leave no orphan behind
            if process.poll() is None:
                process.kill()
                process.wait()
    return Report(path=path, checks=tuple(checks))


def expected_contract(metadata):
    """What an export with this tfgen.json must answer: the resolved signature table and
    the aliases, as the JSON the child processes take."""
    plan = signature_plan(Capabilities.from_metadata(metadata))
    return {"signatures": plan, "aliases": {SERVING_DEFAULT: DEFAULT_SIGNATURE}}


def static_checks(path, contract, metadata):
    """The SignatureDefs in saved_model.pb against the contract (and tfgen.json's list)."""
    _, signature_defs = standalone.read_signature_defs(path)
    plan = {entry["name"]: entry for entry in contract["signatures"]}
    expected = sorted([*plan, *contract["aliases"]])
    present = sorted(n for n in signature_defs if not n.startswith("__"))
    yield Check("static", "signature set", present == expected,
                f"{present}" if present == expected else f"found {present}, the contract says {expected}")
    listed = metadata.get("signatures", {})
    if sorted(listed) != present:
        yield Check("static", "tfgen.json signatures", False, f"tfgen.json lists {sorted(listed)}")
    for name in present:
        entry = plan.get(contract["aliases"].get(name, name))
        yield _signature_check(name, signature_defs[name], entry, listed.get(name))


def _signature_check(name, signature_def, entry, listed):
    """Names, dtypes, shapes (dim 0 batched) and defaults, as the contract gives them."""
    import tensorflow as tf

    if entry is None:
        return Check("static", f"{name} signature", False, "not a contract signature")
    problems = []
    for kind, infos, specs in (("input", signature_def.inputs, entry["inputs"]),
                               ("output", signature_def.outputs, entry["outputs"])):
        specs = {spec["name"]: spec for spec in specs}
        if sorted(infos) != sorted(specs):
            problems.append(f"{kind}s {sorted(infos)}, the contract says {sorted(specs)}")
        for key, info in infos.items():
            dims = [d.size for d in info.tensor_shape.dim]
            if info.tensor_shape.unknown_rank or not dims or dims[0] != -1:
                problems.append(f"{key} not batched on dim 0")
            elif key in specs:
                dtype = tf.as_dtype(info.dtype).name
                spec = specs[key]
                if (dtype, dims) != (spec["dtype"], spec["shape"]):
                    problems.append(f"{key} is {dtype}{dims}, the contract says {spec['dtype']}{spec['shape']}")
    # A default is stored as a one-row tensor (see tfgen.export.signatures).
    defaults = {spec["name"]: [spec["default"]] for spec in entry["inputs"] if spec["default"] is not None}
    stored = {k: tf.make_ndarray(v).tolist() for k, v in signature_def.defaults.items()}
    if stored != defaults:
        problems.append(f"defaults {stored}, the contract says {defaults}")
    if listed and (sorted(signature_def.inputs), sorted(signature_def.outputs)) != (
            sorted(listed["inputs"]), sorted(listed["outputs"])):
        problems.append("inputs/outputs differ from tfgen.json")
    detail = "; ".join(problems) or ", ".join(
        f"{k}{[d.size for d in v.tensor_shape.dim]}" for k, v in sorted(signature_def.inputs.items()))
    return Check("static", f"{name} signature", not problems, detail)


def _environment():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _popen(command):
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_environment())


def _start_child(kinds, path, contract):
    # -P: don't put the script's directory (tfgen/export) on sys.path.
    return _popen([sys.executable, "-P", standalone.__file__, ",".join(kinds), os.path.abspath(path),
                   json.dumps(contract)])


def saved_model_cli():
    """The `saved_model_cli` command next to this Python, or its module form."""
    script = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def _start_cli(path, contract):
    # The required inputs of `sample`, made as the contract's examples make them (the
    # defaulted temperature is left out). TF 2.21's saved_model_cli evaluates
    # --input_exprs with ast.literal_eval only, so `seed=np.arange(4)` is refused:
    # spell the lists out.
    sample = next(e for e in contract["signatures"] if e["name"] == DEFAULT_SIGNATURE)
    sample = dict(sample, inputs=[i for i in sample["inputs"] if i["default"] is None])
    [(_, inputs, _)] = standalone.example_requests([sample], _CLI_ROWS, 0, lambda name, feeds: {})
    exprs = ";".join(f"{k}={v.tolist()}" for k, v in inputs.items())
    return _popen([*saved_model_cli(), "run", "--dir", os.path.abspath(path), "--tag_set", "serve",
                   "--signature_def", DEFAULT_SIGNATURE, "--input_exprs", exprs])


def _communicate(process):
    """`(returncode, stdout, stderr)`, or None if the child ran out of time (it is killed)."""
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None
    return process.returncode, stdout, stderr


def _finish_loaders(process, kinds):
    """Waits for the loaders' child and turns its output into checks, per kind; a kind
    that printed no result (the child died or timed out first) is one failed check."""
    finished = _communicate(process)
    if finished is None:
        return [Check(kind, "finished", False, f"timed out after {TIMEOUT} s") for kind in kinds]
    returncode, stdout, stderr = finished
    results = {}
    for line in stdout.splitlines():
        if line.startswith(standalone.RESULT_MARKER):
            result = json.loads(line[len(standalone.RESULT_MARKER):])
            results[result["kind"]] = result["checks"]
    checks = []
    for kind in kinds:
        if kind in results:
            checks += [Check(kind, r["name"], r["ok"], r["detail"]) for r in results[kind]]
        else:
            checks.append(Check(kind, "finished", False, f"exit {returncode}: {_last_line(stderr)}"))
    return checks


def _finish_cli(process):
    finished = _communicate(process)
    if finished is None:
        return [Check("cli", "finished", False, f"timed out after {TIMEOUT} s")]
    return [_cli_check(*finished)]


def _cli_check(returncode, stdout, stderr):
    found = "Result for output key samples" in stdout
    ok = returncode == 0 and found
    detail = f"sample, {_CLI_ROWS} rows" if ok else f"exit {returncode}: {_last_line(stderr or stdout)}"
    return Check("cli", "saved_model_cli run sample", ok, detail)


def _last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
