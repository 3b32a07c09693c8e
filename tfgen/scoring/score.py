"""Batch `log_prob` scoring of a file, in this process or through a server.

    scorer = LocalScorer("saved_models/digits_realnvp")          # tf.saved_model.load
    scorer = ServerScorer("127.0.0.1:8500", "digits_realnvp")    # TF Serving gRPC API
    summary = score_file(scorer, "digits.npy", "scores.csv", batch_size=256)

Every input row gives one output row `index, log_prob, bits_per_dim, is_finite, error`,
in input order. Rows that cannot be read or are not finite are not sent to the model and
carry their error; if the model refuses a batch, its rows are retried one by one, so one
bad row only costs itself. `is_finite` is false when there is no score or the model
returned NaN/Inf (which TFP does silently for some inputs). Rows stream through in
batches: memory holds one batch of examples (a .npz input is read whole, as numpy does).
Both scorers call the same SavedModel signature on the same batches, so they write the
same numbers. Not resumable yet; the Apache Beam transform is a later issue.
"""

import dataclasses
import math
import os
import time

import numpy as np

from tfgen.contract import SIGNATURES
from tfgen.errors import UserError
from tfgen.files import atomic_open
from tfgen.scoring.inputs import batches, read_rows

#: The signature both scorers call and its tensors (tfgen.contract), looked up once.
LOG_PROB = SIGNATURES["log_prob"]
_X, _CONDITION = LOG_PROB.input("x"), LOG_PROB.input("condition")
_LOG_PROB, _BITS_PER_DIM = LOG_PROB.output("log_prob").name, LOG_PROB.output("bits_per_dim").name
FIELDS = ("index", "log_prob", "bits_per_dim", "is_finite", "error")


class Unreachable(Exception):
    """The model cannot be asked at all (server down): stop rather than flag every row."""


class LocalScorer:
    """The export's `log_prob` signature, loaded with `tf.saved_model.load`.

    Args:
      path: `saved_models/NAME[/VERSION]` (newest version if none).
      version: optional version under `path`.
    """

    def __init__(self, path, version=None):
        import tensorflow as tf

        from tfgen.export.reader import resolve_version

        self.source = resolve_version(path if version is None else os.path.join(path, str(version)))
        loaded = tf.saved_model.load(self.source)
        if LOG_PROB.name not in loaded.signatures:
            raise UserError(f"{self.source} has no {LOG_PROB.name} signature; it has "
                            f"{sorted(loaded.signatures)}")
        self._loaded = loaded
        self._fn = loaded.signatures[LOG_PROB.name]
        specs = self._fn.structured_input_signature[1]
        self.event_shape = tuple(specs[_X.name].shape[1:])
        self.conditional = _CONDITION.name in specs

    def __call__(self, x, condition=None):
        import tensorflow as tf

        inputs = {_X.name: tf.constant(x, _X.dtype)}
        if self.conditional:
            inputs[_CONDITION.name] = tf.constant(condition, _CONDITION.dtype)
        try:
            out = self._fn(**inputs)
        except (tf.errors.InvalidArgumentError, tf.errors.FailedPreconditionError) as e:
            raise RowError(_first_line(e.message)) from None
        return out[_LOG_PROB].numpy(), out[_BITS_PER_DIM].numpy()

    def close(self):
        pass


class ServerScorer:
    """The `log_prob` signature of a served model (tfgen serve or tensorflow_model_server)."""

    def __init__(self, address, model, version=None, timeout=60.0):
        import grpc

        from tfgen.serving import Client

        self.client = Client(address, timeout=timeout)
        self.model, self.version = model, version
        self.source = f"{model} at {address}" + (f" version {version}" if version else "")
        try:
            signature = self.client.signature(model, LOG_PROB.name, version)
        except grpc.RpcError as e:
            self.client.close()
            raise Unreachable(f"{address}: {e.code().name}: {e.details()}") from None
        self.event_shape = tuple(signature["inputs"][_X.name][1][1:])
        if any(d < 0 for d in self.event_shape):
            raise UserError(f"{self.source}: {LOG_PROB.name} {_X.name} has unknown dims {list(self.event_shape)}")
        self.conditional = _CONDITION.name in signature["inputs"]

    def __call__(self, x, condition=None):
        import grpc

        try:
            out = self.client.log_prob(self.model, x, condition if self.conditional else None,
                                       self.version)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                            grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNIMPLEMENTED):
                raise Unreachable(f"{self.client.address}: {e.code().name}: {e.details()}") from None
            raise RowError(f"{e.code().name}: {e.details()}") from None
        return out[_LOG_PROB], out[_BITS_PER_DIM]

    def close(self):
        self.client.close()


def _first_line(message, limit=300):
    """The line of a TensorFlow error that says what went wrong (not where)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Graph execution error", "Detected at node"))
              and not line.startswith(("[[", "File ", "<stack traces"))]
    return (useful or lines or ["error"])[0][:limit]


class RowError(Exception):
    """The model refused these inputs (retried row by row, then written as the error)."""


@dataclasses.dataclass
class Summary:
    rows: int = 0
    scored: int = 0
    errors: int = 0
    non_finite: int = 0
    retried_batches: int = 0  # refused whole, then scored row by row
    bits_per_dim_sum: float = 0.0
    seconds: float = 0.0

    @property
    def mean_bits_per_dim(self):
        finite = self.scored - self.non_finite
        return self.bits_per_dim_sum / finite if finite else float("nan")

    def line(self):
        retried = (f"{self.retried_batches} batch(es) refused whole and scored row by row; "
                   if self.retried_batches else "")
        return (f"{self.rows} rows: {self.scored} scored, {self.errors} not scored (see their "
                f"error column), {self.non_finite} scored with a non-finite log_prob; "
                f"mean bits/dim {self.mean_bits_per_dim:.4f}; {retried}"
                f"{self.seconds:.1f} s ({self.rows / max(self.seconds, 1e-9):.0f} rows/s)")


def _number(value):
    return "" if value is None else repr(float(value))  # float32 -> shortest exact double


def _score_batch(scorer, rows, summary):
    """Fills (log_prob, bits_per_dim) or an error for the readable rows of one batch; a
    batch refused whole is retried row by row and counted in `summary`."""
    good = [r for r in rows if r.error is None]
    results = {}
    if not good:
        return results
    x = np.stack([r.x for r in good])
    condition = np.array([r.condition for r in good], np.int32) if scorer.conditional else None
    try:
        lp, bpd = scorer(x, condition)
        for r, a, b in zip(good, lp, bpd):
            results[r.index] = (a, b)
        return results
    except RowError as e:
        if len(good) == 1:
            good[0].error = str(e)
            return results
    summary.retried_batches += 1
    for r in good:  # one bad row only costs itself
        try:
            lp, bpd = scorer(r.x[None], None if condition is None else np.array([r.condition], np.int32))
            results[r.index] = (lp[0], bpd[0])
        except RowError as e:
            r.error = str(e)
    return results


def score_file(scorer, input_path, out_path, batch_size=256, condition_column=None,
               condition_file=None):
    """Scores every row of `input_path` into the CSV `out_path`; returns a `Summary`."""
    import csv

    start = time.monotonic()
    rows = read_rows(input_path, scorer.event_shape, scorer.conditional, condition_column,
                     condition_file)
    summary = Summary()
    with atomic_open(out_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for batch in batches(rows, batch_size):
            results = _score_batch(scorer, batch, summary)
            for r in batch:
                lp, bpd = results.get(r.index, (None, None))
                finite = lp is not None and math.isfinite(lp) and math.isfinite(bpd)
                summary.rows += 1
                if lp is None:
                    summary.errors += 1
                else:
                    summary.scored += 1
                    if finite:
                        summary.bits_per_dim_sum += float(bpd)
                    else:
                        summary.non_finite += 1
                writer.writerow([r.index, _number(lp), _number(bpd), str(finite).lower(),
                                 r.error or ""])
            f.flush()
    summary.seconds = time.monotonic() - start
    return summary
