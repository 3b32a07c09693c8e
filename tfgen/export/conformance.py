"""Does an export keep the SavedModel contract (DESIGN.md section 4)?

`check_export(path)` runs, each in a fresh process and all three at once:

  (a) `tf.saved_model.load` in a process that never imports tfgen or TFP, calling every
      signature, and checking the graph holds only ops core TF registers;
  (b) the TF1 Session loader with tags ['serve'] (TF Serving's C++ loader path),
      running every SignatureDef by tensor names and replaying the warmup requests;
  (c) `saved_model_cli run ... --signature_def sample --input_exprs 'seed=...'`;

and, from saved_model.pb and tfgen.json in this process, that the signatures are the
ones the contract names, with every input and output batched on dim 0.

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

from tfgen.export import standalone
from tfgen.export.signatures import CONTRACT, SERVING_DEFAULT

#: Seconds one child process may take (TF start is ~6 s, loading and calls a few more).
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
        raise FileNotFoundError(f"{path} is not a SavedModel version directory (no saved_model.pb)")
    with open(os.path.join(path, standalone.METADATA)) as f:
        metadata = json.load(f)
    processes = {kind: _start_child(kind, path) for kind in standalone.KINDS}
    processes["cli"] = _start_cli(path, metadata)
    try:
        checks = list(static_checks(path, metadata))
        for kind, process in processes.items():
            checks += _finish(kind, process)
    finally:
        for process in processes.values():  # on an interrupt, leave no orphan behind
            if process.poll() is None:
                process.kill()
                process.wait()
    return Report(path=path, checks=tuple(checks))


def static_checks(path, metadata):
    """Signature names and batching, read from saved_model.pb against tfgen.json."""
    _, signature_defs = standalone.read_signature_defs(path)
    expected = metadata["signatures"]
    present = sorted(n for n in signature_defs if not n.startswith("__"))
    yield Check("static", "signature set", present == sorted(expected),
                f"{present}" if present == sorted(expected) else f"found {present}, tfgen.json lists {sorted(expected)}")
    for name in present:
        yield _signature_check(name, signature_defs[name], expected.get(name))
    if SERVING_DEFAULT in signature_defs and "sample" in signature_defs:
        same = _io(signature_defs[SERVING_DEFAULT]) == _io(signature_defs["sample"])
        yield Check("static", "serving_default = sample", same)


def _io(signature_def):
    """Names, dtypes and shapes of a SignatureDef's inputs and outputs (not tensor names)."""
    def describe(infos):
        return {k: (v.dtype, tuple(d.size for d in v.tensor_shape.dim), v.tensor_shape.unknown_rank)
                for k, v in infos.items()}
    return describe(signature_def.inputs), describe(signature_def.outputs)


def _signature_check(name, signature_def, listed):
    """Contract names, the names tfgen.json lists, and dim 0 batched for every tensor."""
    contract = CONTRACT.get("sample" if name == SERVING_DEFAULT else name)
    problems = []
    if contract is None:
        problems.append("not a contract signature")
    else:
        for kind, names, allowed in (("input", signature_def.inputs, contract[0]),
                                     ("output", signature_def.outputs, contract[1])):
            stray = sorted(set(names) - set(allowed))
            if stray:
                problems.append(f"{kind} names {stray} not in the contract {list(allowed)}")
    if listed and (sorted(signature_def.inputs), sorted(signature_def.outputs)) != (
            sorted(listed["inputs"]), sorted(listed["outputs"])):
        problems.append("inputs/outputs differ from tfgen.json")
    for key, info in [*signature_def.inputs.items(), *signature_def.outputs.items()]:
        dims = info.tensor_shape.dim
        if info.tensor_shape.unknown_rank or not dims or dims[0].size != -1:
            problems.append(f"{key} not batched on dim 0")
    detail = "; ".join(problems) or ", ".join(
        f"{k}{[d.size for d in v.tensor_shape.dim]}" for k, v in sorted(signature_def.inputs.items()))
    return Check("static", f"{name} names and batching", not problems, detail)


def _environment():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _popen(command):
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_environment())


def _start_child(kind, path):
    # -P: don't put the script's directory (tfgen/export) on sys.path.
    return _popen([sys.executable, "-P", standalone.__file__, kind, os.path.abspath(path)])


def saved_model_cli():
    """The `saved_model_cli` command next to this Python, or its module form."""
    script = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def _start_cli(path, metadata):
    # TF 2.21's saved_model_cli evaluates --input_exprs with ast.literal_eval only, so
    # `seed=np.arange(4)` is refused: spell the lists out.
    rows = list(range(_CLI_ROWS))
    exprs = f"seed={rows}"
    num_classes = metadata["data_spec"].get("num_classes")
    if num_classes:
        exprs += f";condition={[r % num_classes for r in rows]}"
    return _popen([*saved_model_cli(), "run", "--dir", os.path.abspath(path), "--tag_set", "serve",
                   "--signature_def", "sample", "--input_exprs", exprs])


def _finish(kind, process):
    """Waits for one child and turns its output into checks."""
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return [Check(kind, "finished", False, f"timed out after {TIMEOUT} s")]
    if kind == "cli":
        return [_cli_check(process.returncode, stdout, stderr)]
    for line in reversed(stdout.splitlines()):
        if line.startswith(standalone.RESULT_MARKER):
            results = json.loads(line[len(standalone.RESULT_MARKER):])
            return [Check(kind, r["name"], r["ok"], r["detail"]) for r in results]
    return [Check(kind, "finished", False, f"exit {process.returncode}: {_last_line(stderr)}")]


def _cli_check(returncode, stdout, stderr):
    found = "Result for output key samples" in stdout
    ok = returncode == 0 and found
    detail = f"sample, {_CLI_ROWS} rows" if ok else f"exit {returncode}: {_last_line(stderr or stdout)}"
    return Check("cli", "saved_model_cli run sample", ok, detail)


def _last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
