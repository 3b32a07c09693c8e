"""`ScoreLogProb`: log_prob scoring as an Apache Beam PTransform on RunInference, and the
whole `tfgen score --runner` pipeline, with nothing on the launching machine's disk.

    import apache_beam as beam
    from tfgen.scoring.beam import ScoreLogProb

    with beam.Pipeline() as p:
        records = (p | beam.Create(list(enumerate(rows)))       # (index, Row)
                     | ScoreLogProb("gs://bucket/models/digits_realnvp/1"))

Beam's stock `TFModelHandlerTensor` loads the model through Keras and calls it, so it
cannot call a named signature (and its module imports tensorflow-hub); `SignatureModelHandler`
is a `ModelHandler` that loads the SavedModel's signatures as `tfgen serve` does
(`tfgen.export.reader.Export`; any path TensorFlow's gfile reads: local, gs://, or s3://
and hdfs:// with tensorflow-io) and calls the signature by name. Elements are keyed (`KeyedModelHandler`), so each record joins
back to its input row; rows already flagged when read (`tfgen.scoring.inputs`) skip the
model, and a batch the model refuses is retried row by row, so a bad row only costs
itself. The records are the local path's (`tfgen.scoring.score`), row for row.

`build_pipeline` is what `tfgen score --runner NAME [--pipeline-option=--flag=value ...]`
runs on any Beam runner (DirectRunner, FlinkRunner, SparkRunner, DataflowRunner):

    Splits (row ranges, from the input's header)  ->  ReadRows on the workers
    (`apache_beam.io.filesystems`)  ->  Reshuffle  ->  ScoreLogProb  ->  one of Beam's
    file sinks (WriteToParquet, WriteToText for CSV and JSONL) at --out.

The launcher only reads the input's row count and the model's signature; the workers
read the rows, load the model and write the output, all by path, so a remote runner needs
the paths readable from its workers (a bucket), not a shared disk. The output holds one
row per input row with its `index` and `key`, in the order the runner delivers them:
join or sort on `index`.
"""

import itertools

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

#: The namespace of the row counters every run reports (`score_with_beam` reads them back).
METRICS_NAMESPACE = "tfgen.score"
COUNTERS = ("rows", "scored", "errors", "non_finite")


class SignatureModelHandler(ModelHandler):
    """Loads a SavedModel (`tfgen.scoring.score.LocalScorer`) and calls its `log_prob`
    signature on batches of `Row`s; each `PredictionResult.inference` is `(log_prob,
    bits_per_dim)` or the error of a row the model refused.

    Args:
      model_path: a SavedModel version directory (local or a gfile URL).
      signature: the signature to call (default `log_prob`).
      min_batch_size, max_batch_size: the batch size bounds Beam's batching keeps to.
    """

    def __init__(self, model_path, signature="log_prob", min_batch_size=1, max_batch_size=256):
        super().__init__()
        self._model_path, self._signature = model_path, signature
        self._batch = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

    def load_model(self):
        from tfgen.scoring.score import LocalScorer

        return LocalScorer(self._model_path, signature=self._signature)

    def run_inference(self, batch, model, inference_args=None):
        from tfgen.scoring.score import Summary, _score_batch

        results = _score_batch(model, batch, Summary())
        for row in batch:
            yield PredictionResult(row, results.get(row.index, row.error))

    def batch_elements_kwargs(self):
        return dict(self._batch)


def _record(index_and_row, inference=None):
    from tfgen.scoring.score import _records

    _, row = index_and_row
    results = {}
    if isinstance(inference, tuple):
        results[row.index] = inference
    elif isinstance(inference, str):
        row.error = inference
    return next(_records([row], results))


class ScoreLogProb(beam.PTransform):
    """`(index, Row)` elements -> score records (dicts of `tfgen.scoring.outputs.FIELDS`).

    Args:
      model_path: a SavedModel version directory (local or a gfile URL).
      min_batch_size, max_batch_size: batch size bounds of RunInference.
    """

    def __init__(self, model_path, min_batch_size=1, max_batch_size=256):
        super().__init__()
        self._handler = KeyedModelHandler(SignatureModelHandler(
            model_path, min_batch_size=min_batch_size, max_batch_size=max_batch_size))

    def expand(self, rows):
        readable, flagged = rows | "Flagged" >> beam.Partition(lambda e, n: int(e[1].error is not None), 2)
        scored = (readable
                  | "Score" >> RunInference(self._handler)
                  | "Scored" >> beam.Map(lambda kv: _record((kv[0], kv[1].example), kv[1].inference)))
        unread = flagged | "Unread" >> beam.Map(_record)
        return (scored, unread) | beam.Flatten()


class ReadRows(beam.DoFn):
    """`(start, stop)` row ranges -> `(index, Row)` of input `path`, read on the worker
    (`tfgen.scoring.inputs.read_rows`, through Beam's file systems for URLs).

    Args:
      path: the input (file or folder; local or a URL of a Beam file system).
      spec: the model's `DataSpec`; conditional: whether rows need a class.
      condition_column, condition_file, key_column: as `read_rows` takes them.
    """

    def __init__(self, path, spec, conditional, condition_column=None, condition_file=None, key_column=None):
        super().__init__()
        self._path, self._spec, self._conditional = path, spec, conditional
        self._columns = (condition_column, condition_file, key_column)

    def process(self, split):
        from tfgen.scoring.inputs import read_rows

        start, stop = split
        rows = read_rows(self._path, self._spec, self._conditional, *self._columns, skip=start)
        for row in itertools.islice(rows, None if stop is None else stop - start):
            yield row.index, row


def splits(row_count, split_rows):
    """Row ranges `(start, stop)` of `split_rows` rows, or one open range when the count
    is unknown (CSV, TFRecord, .npz: read whole by one worker, then spread)."""
    if row_count is None:
        return [(0, None)]
    return [(start, min(start + split_rows, row_count)) for start in range(0, row_count, split_rows)] or [(0, 0)]


def _counted(record):
    """Counts the record in the run's metrics (the launcher's summary) and passes it on."""
    Metrics.counter(METRICS_NAMESPACE, "rows").inc()
    if record["log_prob"] is None:
        Metrics.counter(METRICS_NAMESPACE, "errors").inc()
    else:
        Metrics.counter(METRICS_NAMESPACE, "scored").inc()
        if not record["is_finite"]:
            Metrics.counter(METRICS_NAMESPACE, "non_finite").inc()
    return record


class WriteRecords(beam.PTransform):
    """Score records -> `out_path` (`.parquet`, `.csv`, `.jsonl`) through Beam's file sinks,
    which write on the workers and work on any file system Beam knows.

    Args:
      out_path: the output; with `num_shards` N > 1, N files `NAME-SSSSS-of-NNNNN.EXT`.
      num_shards: output files (1: exactly `out_path`).
    """

    def __init__(self, out_path, num_shards=1):
        super().__init__()
        from tfgen.scoring.outputs import check_output

        self._ext = check_output(out_path)
        self._prefix = out_path[:-len(self._ext)]
        self._out_path, self._num_shards = out_path, num_shards

    def _files(self):
        if self._num_shards == 1:
            return {"file_path_prefix": self._out_path, "num_shards": 1, "shard_name_template": ""}
        return {"file_path_prefix": self._prefix, "file_name_suffix": self._ext, "num_shards": self._num_shards}

    def expand(self, records):
        from tfgen.scoring.outputs import FIELDS, parquet_schema

        if self._ext == ".parquet":
            return records | "Parquet" >> beam.io.WriteToParquet(schema=parquet_schema(FIELDS), **self._files())
        if self._ext == ".csv":
            lines = records | "Csv" >> beam.Map(_csv_line)
            return lines | "Text" >> beam.io.WriteToText(header=_csv_line(dict(zip(FIELDS, FIELDS))), **self._files())
        lines = records | "Json" >> beam.Map(_json_line)
        return lines | "Text" >> beam.io.WriteToText(**self._files())


def _csv_line(record):
    import csv
    import io

    from tfgen.scoring.outputs import csv_cells

    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow(csv_cells(record))
    return text.getvalue()


def _json_line(record):
    import json

    from tfgen.scoring.outputs import FIELDS

    return json.dumps({k: record[k] for k in FIELDS})


def pipeline_options(runner, options=()):
    """`PipelineOptions` for `runner` with the user's pass-through flags; an unknown flag
    is a UserError naming it (Beam itself would only warn and drop it)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from tfgen.errors import UserError

    import contextlib
    import io

    parsed = PipelineOptions([f"--runner={runner}", *options])
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):  # Beam's argparse prints every Beam flag's usage
            known = parsed.get_all_options()
    except SystemExit:
        message = usage.getvalue().strip().splitlines()[-1].split("error: ", 1)[-1]
        raise UserError(f"--pipeline-option: {message}") from None
    unknown = parsed.get_all_options(retain_unknown_options=True).keys() - known.keys()
    if unknown:
        raise UserError(f"unknown Beam pipeline option(s) {sorted(unknown)} for --runner {runner}")
    return parsed


def new_pipeline(runner, options=()):
    """An empty `beam.Pipeline` on `runner`; an unknown runner, an unknown flag or options
    the runner refuses are a one-line UserError."""
    from tfgen.errors import UserError

    parsed = pipeline_options(runner, options)
    try:
        return beam.Pipeline(options=parsed)
    except ValueError as e:  # the runner's own check: a header line, then one problem a line
        problems = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        raise UserError(f"--runner {runner}: {'; '.join(problems) or e}") from None


def build_pipeline(model, input_path, out_path, runner, options=(), batch_size=256, condition_column=None,
                   condition_file=None, key_column=None, split_rows=None, num_shards=1):
    """The `tfgen score --runner` pipeline, built and not run.

    Args:
      model: a `LocalScorer` of the export (its resolved `source`, `spec` and
        `conditional` go to the workers, which load the model themselves).
      input_path, out_path: the input and the output (local paths or URLs).
      runner, options: the Beam runner's name and pass-through pipeline flags.
      batch_size: the most rows per signature call.
      split_rows: rows per read split (default 64 batches).
      num_shards: output files (see `WriteRecords`).
    """
    from tfgen.errors import UserError
    from tfgen.scoring.inputs import count_rows

    if batch_size < 1 or num_shards < 1:
        raise UserError(f"--batch-size and --out-shards must be >= 1, got {batch_size} and {num_shards}")
    pipeline = new_pipeline(runner, options)
    (pipeline
     | "Splits" >> beam.Create(splits(count_rows(input_path), split_rows or 64 * batch_size))
     | "ReadRows" >> beam.ParDo(ReadRows(input_path, model.spec, model.conditional, condition_column,
                                         condition_file, key_column))
     | "Spread" >> beam.Reshuffle()
     | "ScoreLogProb" >> ScoreLogProb(model.source, max_batch_size=batch_size)
     | "Count" >> beam.Map(_counted)
     | "Write" >> WriteRecords(out_path, num_shards))
    return pipeline


def score_with_beam(model, input_path, out_path, runner, options=(), **kwargs):
    """Builds the pipeline (`build_pipeline`'s arguments), runs it to the end and returns
    its row counts `{rows, scored, errors, non_finite}` from the runner's metrics."""
    result = build_pipeline(model, input_path, out_path, runner, options, **kwargs).run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    counts = dict.fromkeys(COUNTERS, 0)
    for counter in counters:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] += value or 0
    return counts
