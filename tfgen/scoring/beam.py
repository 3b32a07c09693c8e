"""`ScoreLogProb`: log_prob scoring as an Apache Beam PTransform on RunInference.

    import apache_beam as beam
    from tfgen.scoring.beam import ScoreLogProb

    with beam.Pipeline() as p:
        records = (p | beam.Create(list(enumerate(rows)))       # (index, Row)
                     | ScoreLogProb("saved_models/digits_realnvp/1"))

Beam's stock `TFModelHandlerTensor` loads the model through Keras and calls it, so it
cannot call a named signature (and its module imports tensorflow-hub); `SignatureModelHandler`
is a `ModelHandler` that loads the SavedModel with `tf.saved_model.load` and calls the
signature by name. Elements are keyed (`KeyedModelHandler`), so each record joins back
to its input row; rows already flagged when read (`tfgen.scoring.inputs`) skip the model,
and a batch the model refuses is retried row by row, so a bad row only costs itself. The
records are the local path's (`tfgen.scoring.score`), row for row.

`tfgen score --runner NAME [--pipeline-option=--flag=value ...]` runs it on any Beam
runner (DirectRunner, FlinkRunner, SparkRunner, DataflowRunner with their options); the
input is read by the launching process (`beam.Create`), the records are written as JSON
lines under a temporary folder of the launching machine (so remote runners need a
shared file system there) and sorted by index into the output.
"""

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference


class SignatureModelHandler(ModelHandler):
    """Loads a SavedModel with `tf.saved_model.load` and calls its `log_prob` signature
    on batches of `Row`s; each `PredictionResult.inference` is `(log_prob, bits_per_dim)`
    or the error of a row the model refused.

    Args:
      model_path: a SavedModel version directory.
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
      model_path: a SavedModel version directory.
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


def score_with_beam(model_path, rows, runner, pipeline_options=(), batch_size=256):
    """Runs `ScoreLogProb` on `rows` (an iterable of `Row`) with `runner`; returns the
    records sorted by index."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions([f"--runner={runner}", *pipeline_options])
    prefix = _temporary_prefix()
    with beam.Pipeline(options=options) as pipeline:
        (pipeline
         | "Rows" >> beam.Create([(row.index, row) for row in rows])
         | "ScoreLogProb" >> ScoreLogProb(model_path, max_batch_size=batch_size)
         | "Json" >> beam.Map(_json)
         | "Write" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl"))
    return sorted(_read_shards(prefix), key=lambda r: r["index"])


def _json(record):
    import json

    return json.dumps(record)


def _temporary_prefix():
    import tempfile

    return tempfile.mkdtemp(prefix="tfgen-beam-") + "/records"


def _read_shards(prefix):
    import glob
    import json
    import os
    import shutil

    records = []
    for path in sorted(glob.glob(prefix + "*")):
        with open(path) as f:
            records.extend(json.loads(line) for line in f if line.strip())
    shutil.rmtree(os.path.dirname(prefix), ignore_errors=True)
    return records


