"""Streaming, resumable `log_prob` scoring of a file, in this process or through a server.

    scorer = LocalScorer("saved_models/digits_realnvp")          # in this process
    scorer = ServerScorer("127.0.0.1:8500", "digits_realnvp")    # TF Serving gRPC API
    summary = score_file(scorer, "digits.npy", "scores.parquet", batch_size=256)

Every input row gives one output row (`tfgen.scoring.outputs.FIELDS`: index, key,
log_prob, bits_per_dim, is_finite, error), in input order. Rows that cannot be read or
are not finite are not sent to the model and carry their error; if the model refuses a
batch, its rows are retried one by one, so one bad row only costs itself. `is_finite` is
false when there is no score or the model returned NaN/Inf (which TFP does silently for
some inputs). Both scorers call the same SavedModel signature on the same batches, so
they write the same numbers.

Streaming. Rows are read a chunk at a time (`tfgen.scoring.inputs`), grouped into
batches that a `tf.data` pipeline prefetches (reading and decoding the next batches
while the model runs one), and written as they are scored: memory holds a few batches,
whatever the input's size.

Resumable. Rows go in shards of `shard_rows`; each finished shard is written, whole and
atomically, into a hidden folder next to the output (`.NAME.parts/`, with a manifest of
the input, model and settings). An interrupted run leaves the finished shards there;
`resume=True` checks the manifest and continues at the first missing shard, so no row is
scored twice or skipped. The output file appears only when every shard is done (the
parts are then joined and removed).
"""

import dataclasses
import itertools
import json
import math
import os
import shutil
import sys
import time

from tfgen.contract import SIGNATURES
from tfgen.errors import UserError, graph_error_message
from tfgen.files import atomic_open, write_json
from tfgen.scoring.inputs import DataSpec, batches, count_rows, input_format, read_rows
from tfgen.scoring.outputs import WRITERS, check_output, open_writer

#: The signature both scorers call and its tensors (tfgen.contract), looked up once.
LOG_PROB = SIGNATURES["log_prob"]
_X, _CONDITION = LOG_PROB.input("x"), LOG_PROB.input("condition")
_LOG_PROB, _BITS_PER_DIM = LOG_PROB.output("log_prob").name, LOG_PROB.output("bits_per_dim").name
#: Batches read ahead of the one being scored.
PREFETCH_BATCHES = 2


class Unreachable(Exception):
    """The model cannot be asked at all (server down): stop rather than flag every row."""


class LocalScorer:
    """The export's `log_prob` signature, loaded in this process as `tfgen serve` loads it
    (`tfgen.export.reader.Export`).

    Args:
      path: `saved_models/NAME[/VERSION]` (newest version if none), or a URL TensorFlow's
        gfile reads (`gs://bucket/models/NAME[/VERSION]`), as Beam workers load it.
      version: optional version under `path`.
      signature: the signature to call: one taking the log_prob inputs and returning
        log_prob and bits_per_dim.
    """

    def __init__(self, path, version=None, signature=LOG_PROB.name):
        from tfgen.export.reader import Export, event_shape

        self.source = resolve_export(path if version is None else f"{path.rstrip('/')}/{version}")
        export = Export(self.source)
        self._fn = export.function(signature)
        specs = export.describe(signature)["inputs"]
        self.event_shape = event_shape(specs[_X.name][1])
        self.conditional = _CONDITION.name in specs
        self.spec = _local_spec(self.source, self.event_shape)

    def __call__(self, x, condition=None):
        import tensorflow as tf

        inputs = {_X.name: tf.constant(x, _X.dtype)}
        if self.conditional:
            inputs[_CONDITION.name] = tf.constant(condition, _CONDITION.dtype)
        try:
            out = self._fn(**inputs)
        except (tf.errors.InvalidArgumentError, tf.errors.FailedPreconditionError) as e:
            raise RowError(graph_error_message(e.message, limit=300)) from None
        return out[_LOG_PROB].numpy(), out[_BITS_PER_DIM].numpy()

    def close(self):
        pass


def resolve_export(path):
    """`tfgen.export.reader.resolve_version` for local paths; for a URL, the same rule
    (the path itself if it holds a SavedModel, else its newest complete integer version)
    through `tf.io.gfile`, which reads gs:// (and s3://, hdfs:// with tensorflow-io)."""
    from tfgen.export.reader import resolve_version
    from tfgen.errors import MissingPath
    from tfgen.scoring.inputs import is_url
    from tfgen.versions import SAVED_MODEL_FILES, parse_version

    if not is_url(path):
        return resolve_version(path)
    import tensorflow as tf

    def complete(directory):
        return any(tf.io.gfile.exists(f"{directory}/{f}") for f in SAVED_MODEL_FILES)

    path = path.rstrip("/")
    if not tf.io.gfile.isdir(path):
        raise MissingPath(f"no model directory {path}")
    if complete(path):
        return path
    versions = {parse_version(name.rstrip("/")): f"{path}/{name.rstrip('/')}"
                for name in tf.io.gfile.listdir(path)}
    versions = {v: d for v, d in versions.items() if v is not None and complete(d)}
    if not versions:
        raise MissingPath(f"{path} holds no SavedModel and no integer version directory with a saved_model.pb")
    return versions[max(versions)]


def _local_spec(version_dir, event_shape):
    """The DataSpec of an export, from its tfgen.json (defaults for a foreign SavedModel)."""
    from tfgen.export.reader import read_metadata
    from tfgen.export.standalone import METADATA
    from tfgen.errors import MissingPath
    from tfgen.scoring.inputs import is_url

    if is_url(version_dir):
        import tensorflow as tf

        try:
            with tf.io.gfile.GFile(f"{version_dir}/{METADATA}") as f:
                spec = json.load(f)["data_spec"]
        except tf.errors.NotFoundError:
            return DataSpec(event_shape)
    else:
        try:
            spec = read_metadata(version_dir)["data_spec"]
        except MissingPath:
            return DataSpec(event_shape)
    return DataSpec(event_shape, levels=spec.get("levels") or 0, sample_rate=spec.get("sample_rate") or 0,
                    low=spec.get("low"), high=spec.get("high"))


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
        self.spec = DataSpec(self.event_shape)
        if "describe" in self.client.metadata(model, version)["signature_def"]:
            described = self.client.describe(model, version)
            self.spec = DataSpec(self.event_shape, levels=described["levels"],
                                 sample_rate=described["sample_rate"])

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
    resumed_rows: int = 0  # rows of shards an earlier run finished

    @property
    def mean_bits_per_dim(self):
        finite = self.scored - self.non_finite
        return self.bits_per_dim_sum / finite if finite else float("nan")

    def add(self, other):
        for field in ("rows", "scored", "errors", "non_finite", "retried_batches", "bits_per_dim_sum"):
            setattr(self, field, getattr(self, field) + getattr(other, field))

    def count(self, record):
        self.rows += 1
        if record["log_prob"] is None:
            self.errors += 1
        else:
            self.scored += 1
            if record["is_finite"]:
                self.bits_per_dim_sum += record["bits_per_dim"]
            else:
                self.non_finite += 1

    def line(self):
        retried = (f"{self.retried_batches} batch(es) refused whole and scored row by row; "
                   if self.retried_batches else "")
        resumed = (f"{self.resumed_rows} rows from the interrupted run's shards; "
                   if self.resumed_rows else "")
        fresh = self.rows - self.resumed_rows
        return (f"{self.rows} rows: {self.scored} scored, {self.errors} not scored (see their "
                f"error column), {self.non_finite} scored with a non-finite log_prob; "
                f"mean bits/dim {self.mean_bits_per_dim:.4f}; {retried}{resumed}"
                f"{self.seconds:.1f} s ({rate_text(fresh, self.seconds)})")


def rate_text(rows, seconds):
    """"123 rows/s", with two significant figures below 10 (a DDPM's bound scores
    about one row a second: "0.93 rows/s", not "1 rows/s" or "0 rows/s")."""
    rate = rows / max(seconds, 1e-9)
    return f"{rate:.0f} rows/s" if rate >= 10 else f"{rate:.2g} rows/s"


def _score_batch(scorer, rows, summary):
    """Fills (log_prob, bits_per_dim) or an error for the readable rows of one batch; a
    batch refused whole is retried row by row and counted in `summary`. Rows of
    different shapes (audio of any length) go in one call per shape."""
    import numpy as np

    good = [r for r in rows if r.error is None]
    results = {}
    by_shape = {}
    for r in good:
        by_shape.setdefault(r.x.shape, []).append(r)
    for group in by_shape.values():
        x = np.stack([r.x for r in group])
        condition = np.array([r.condition for r in group], np.int32) if scorer.conditional else None
        try:
            lp, bpd = scorer(x, condition)
            results.update((r.index, (a, b)) for r, a, b in zip(group, lp, bpd))
            continue
        except RowError as e:
            if len(group) == 1:
                group[0].error = str(e)
                continue
        summary.retried_batches += 1
        for r in group:  # one bad row only costs itself
            try:
                lp, bpd = scorer(r.x[None], None if condition is None else np.array([r.condition], np.int32))
                results[r.index] = (lp[0], bpd[0])
            except RowError as e:
                r.error = str(e)
    return results


def _records(rows, results):
    for r in rows:
        lp, bpd = results.get(r.index, (None, None))
        lp = None if lp is None else float(lp)
        bpd = None if bpd is None else float(bpd)
        yield {"index": r.index, "key": r.key, "log_prob": lp, "bits_per_dim": bpd,
               "is_finite": lp is not None and math.isfinite(lp) and math.isfinite(bpd),
               "error": r.error}


def prefetched(items, depth=PREFETCH_BATCHES):
    """`items` (any Python iterator) read ahead by `depth` on a tf.data thread.

    tf.data carries only each item's number; the item waits in a dict until it is taken,
    so at most `depth + 1` items are held.
    """
    import tensorflow as tf

    pending, failed = {}, []
    iterator = iter(items)

    def numbers():
        try:
            for number, item in enumerate(iterator):
                pending[number] = item
                yield number
        except Exception as e:  # raised again below, as itself (tf.data would wrap it)
            failed.append(e)

    dataset = tf.data.Dataset.from_generator(numbers, output_signature=tf.TensorSpec([], tf.int64))
    for number in dataset.prefetch(depth).as_numpy_iterator():
        yield pending.pop(int(number))
    if failed:
        raise failed[0]


class Parts:
    """The finished shards of one run, in `.NAME.parts/` beside the output.

    Args:
      out_path: the output file.
      manifest: what the shards were made from (input, model, settings): a resumed run
        must match it.
    """

    def __init__(self, out_path, manifest):
        self.out_path = os.path.abspath(out_path)
        self.folder = os.path.join(os.path.dirname(self.out_path),
                                   f".{os.path.basename(self.out_path)}.parts")
        self.manifest = manifest

    def _shard(self, number):
        return os.path.join(self.folder, f"shard-{number:06d}.jsonl")

    def start(self, resume):
        """The summaries of the shards already done (resume) or [] (new run)."""
        manifest_path = os.path.join(self.folder, "manifest.json")
        if not os.path.isdir(self.folder):
            if resume:
                raise UserError(f"--resume: no interrupted run to resume for {self.out_path} "
                                f"(no {self.folder})")
            os.makedirs(self.folder)
            write_json(manifest_path, self.manifest)
            return []
        if not resume:
            raise UserError(f"an interrupted run of this output left {self.folder}: pass --resume "
                            "to continue it, or delete that folder to start again")
        try:
            with open(manifest_path) as f:
                recorded = json.load(f)
        except (OSError, ValueError):
            raise UserError(f"{manifest_path} is missing or damaged: delete {self.folder} to start again") from None
        changed = sorted(k for k in set(recorded) | set(self.manifest) if recorded.get(k) != self.manifest.get(k))
        if changed:
            raise UserError(f"--resume: the interrupted run differs in {', '.join(changed)} "
                            f"(was {[recorded.get(k) for k in changed]}); delete {self.folder} to start again")
        done = []
        while os.path.isfile(self._shard(len(done)) + ".summary.json"):
            with open(self._shard(len(done)) + ".summary.json") as f:
                done.append(Summary(**json.load(f)))
        return done

    def write(self, number, records):
        """Writes shard `number` whole (JSON lines), then its summary; returns the summary."""
        summary = Summary()
        with atomic_open(self._shard(number)) as f:
            for record in records:
                summary.count(record)
                f.write(json.dumps(record) + "\n")
        write_json(self._shard(number) + ".summary.json", dataclasses.asdict(summary))
        return summary

    def join(self, count, ext):
        """Writes the output from shards 0..count-1 in format `ext`, then removes the parts."""
        with atomic_open(self.out_path, WRITERS[ext][1], **({} if ext == ".parquet" else {"newline": ""})) as f:
            writer = open_writer(f, ext)
            for number in range(count):
                with open(self._shard(number)) as shard:
                    for line in shard:
                        writer.write(json.loads(line))
            writer.close()
        shutil.rmtree(self.folder)


def _input_identity(path):
    stat = os.stat(path)
    return {"input": os.path.abspath(path), "input_size": stat.st_size, "input_mtime_ns": stat.st_mtime_ns}


def progress_bar(total, enabled=None):
    """A tqdm bar on stderr with rows/s, shown only on a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, unit="rows", dynamic_ncols=True, smoothing=0.1,
                disable=not (sys.stderr.isatty() if enabled is None else enabled))


def score_file(scorer, input_path, out_path, batch_size=256, condition_column=None,
               condition_file=None, key_column=None, shard_rows=None, resume=False,
               progress=None):
    """Scores every row of `input_path` into `out_path` (`.csv`, `.jsonl` or `.parquet`);
    returns a `Summary`.

    Args:
      scorer: a `LocalScorer` or `ServerScorer`.
      batch_size: rows per signature call.
      condition_column, condition_file, key_column: see `tfgen.scoring.inputs.read_rows`.
      shard_rows: rows per resumable shard (default 64 batches).
      resume: continue an interrupted run of the same output (see the module doc).
      progress: show a progress bar (default: when stderr is a terminal).
    """
    ext = check_output(out_path)
    input_format(input_path)
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    shard_rows = shard_rows or 64 * batch_size
    if shard_rows < 1:
        raise UserError(f"--shard-rows must be >= 1, got {shard_rows}")
    start = time.monotonic()
    manifest = {**_input_identity(input_path), "model": scorer.source, "batch_size": batch_size,
                "shard_rows": shard_rows, "condition_column": condition_column,
                "condition_file": condition_file and os.path.abspath(condition_file),
                "key_column": key_column}
    parts = Parts(out_path, manifest)
    rows = read_rows(input_path, scorer.spec, scorer.conditional, condition_column,
                     condition_file, key_column)
    first = next(rows, None)  # the options and the file are checked before any shard exists
    rows = itertools.chain([] if first is None else [first], rows)
    done = parts.start(resume)
    summary = Summary()
    for shard in done:
        summary.add(shard)
    summary.resumed_rows = summary.rows
    if done:
        rows = read_rows(input_path, scorer.spec, scorer.conditional, condition_column,
                         condition_file, key_column, skip=len(done) * shard_rows)
    shards = len(done)
    with progress_bar(count_rows(input_path), progress) as bar:
        bar.update(summary.rows)
        shard_batches = _shard_batches(rows, batch_size, shard_rows)
        current, pending = None, []
        for number, batch in prefetched(shard_batches):
            if number != current and pending:
                summary.add(parts.write(shards, pending))
                shards += 1
                pending = []
            current = number
            results = _score_batch(scorer, batch, summary)
            pending.extend(_records(batch, results))
            bar.update(len(batch))
        if pending:
            summary.add(parts.write(shards, pending))
            shards += 1
    parts.join(shards, ext)
    summary.seconds = time.monotonic() - start
    return summary


def _shard_batches(rows, batch_size, shard_rows):
    """`(shard number, batch)` pairs; a batch never spans two shards."""
    iterator = iter(rows)
    for number in itertools.count():
        empty = True
        for batch in batches(itertools.islice(iterator, shard_rows), batch_size):
            empty = False
            yield number, batch
        if empty:
            return
