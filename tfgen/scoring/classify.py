"""`tfgen classify`: a class-conditional likelihood model as a Bayes classifier, with a
reject option.

    tfgen classify --model saved_models/digits_conditional_glow --input x.npy --out c.csv \\
        --reject-below -60.5          # or --threshold threshold.json (from `tfgen ood fit`)

Each row gets the most probable class under p(y | x) = p(x | y) p(y) / p(x), that class's
probability, and the marginal log p(x) = log sum_y p(x | y) p(y): log p(x | y) from the
export's `log_prob` signature for every class, p(y) the training data's class
frequencies recorded in its tfgen.json (the prior its `classify` signature bakes in, so
the two agree; TF Serving's Classify returns only classes and scores, not log p(x)). A row whose log p(x) is below the
threshold is `rejected`: the model has not seen data like it, so its class is not a
decision (it is still written). Unreadable rows keep their place with an error, as in
`tfgen score`.
"""

import dataclasses
import json
import math
import sys

import numpy as np

from tfgen.errors import UserError, graph_error_message
from tfgen.files import atomic_open
from tfgen.scoring.inputs import batches, read_rows
from tfgen.scoring.outputs import WRITERS, check_output, open_writer
from tfgen.scoring.score import RowError, progress_bar

FIELDS = ("index", "key", "class", "probability", "log_prob", "rejected", "error")


def bayes(conditional_log_prob, prior):
    """`(log p(y | x) [B, C], log p(x) [B])` from log p(x | y) `[B, C]` and p(y) `[C]`."""
    from scipy.special import logsumexp

    joint = np.asarray(conditional_log_prob, np.float64) + np.log(np.asarray(prior, np.float64))
    marginal = logsumexp(joint, axis=1)
    return joint - marginal[:, None], marginal


class Classifier:
    """A class-conditional export's `log_prob` signature, loaded in this process as
    `tfgen serve` loads it (`tfgen.export.reader.Export`), and the class prior of its
    tfgen.json. Returns `(log p(y | x) [B, C], log p(x) [B])` for a batch `x`."""

    def __init__(self, path):
        from tfgen.export.reader import Export, event_shape, read_metadata, resolve_version
        from tfgen.scoring.score import _local_spec

        self.source = resolve_version(path)
        export = Export(self.source)
        if "classify" not in export.signature_defs:
            raise UserError(f"{self.source} has no classify signature (class-conditional likelihood "
                            f"models exported by tfgen >= format 4 have one); it has "
                            f"{sorted(export.signature_defs)}")
        self.prior = read_metadata(self.source)["training_data"].get("class_prior")
        self._fn = export.function("log_prob")
        self.event_shape = event_shape(export.describe("log_prob")["inputs"]["x"][1])
        self.num_classes = export.describe("classify")["outputs"]["scores"][1][1]
        self.prior = self.prior or [1.0 / self.num_classes] * self.num_classes  # as the export bakes it in
        self.spec = _local_spec(self.source, self.event_shape)

    def __call__(self, x):
        import tensorflow as tf

        rows, classes = len(x), self.num_classes
        try:
            out = self._fn(x=tf.constant(np.repeat(x, classes, axis=0), tf.float32),
                           condition=tf.constant(np.tile(np.arange(classes, dtype=np.int32), rows)))
        except (tf.errors.InvalidArgumentError, tf.errors.FailedPreconditionError) as e:
            raise RowError(graph_error_message(e.message, limit=300)) from None
        return bayes(out["log_prob"].numpy().reshape(rows, classes), self.prior)


@dataclasses.dataclass
class Summary:
    rows: int = 0
    classified: int = 0
    rejected: int = 0
    errors: int = 0

    def line(self):
        return (f"{self.rows} rows: {self.classified} classified, {self.rejected} of them rejected "
                f"(log p(x) below the threshold), {self.errors} not classified (see their error column)")


def read_threshold(path):
    """The log p(x) threshold of a `tfgen ood fit` file (score `log_prob`)."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"--threshold {path}: not a readable threshold file ({e})") from None
    if doc.get("score") != "log_prob" or not isinstance(doc.get("threshold"), (int, float)):
        raise UserError(f"--threshold {path}: needs a threshold fitted on the score log_prob "
                        f"(`tfgen ood fit --score log_prob`), got score {doc.get('score')!r}")
    # `tfgen ood` flags high OOD scores; the log_prob score is -log2 p(x), in bits.
    return -float(doc["threshold"]) * math.log(2.0)


def classify_file(classifier, input_path, out_path, batch_size=256, reject_below=None, progress=None):
    """Classifies every row of `input_path` into `out_path`; returns a `Summary`."""
    ext = check_output(out_path)
    rows = read_rows(input_path, classifier.spec)
    summary = Summary()
    with atomic_open(out_path, WRITERS[ext][1], **({} if ext == ".parquet" else {"newline": ""})) as f, \
            progress_bar(None, progress) as bar:
        writer = open_writer(f, ext, FIELDS)
        for batch in batches(rows, batch_size):
            for record in _classified(classifier, batch, reject_below):
                summary.rows += 1
                summary.errors += record["error"] is not None
                summary.classified += record["error"] is None
                summary.rejected += bool(record["rejected"])
                writer.write(record)
            bar.update(len(batch))
        writer.close()
    return summary


def _classified(classifier, batch, reject_below):
    good = [r for r in batch if r.error is None]
    results = {}
    if good:
        try:
            posterior, log_prob = classifier(np.stack([r.x for r in good]))
            results = {r.index: (p, lp) for r, p, lp in zip(good, posterior, log_prob)}
        except RowError:
            for r in good:  # a batch refused whole: one bad row only costs itself
                try:
                    posterior, log_prob = classifier(r.x[None])
                    results[r.index] = (posterior[0], log_prob[0])
                except RowError as e:
                    r.error = str(e)
    for r in batch:
        record = {"index": r.index, "key": r.key, "class": None, "probability": None, "log_prob": None,
                  "rejected": None, "error": r.error}
        if r.index in results:
            posterior, log_prob = results[r.index]
            if not (math.isfinite(log_prob) and np.all(np.isfinite(posterior))):
                record["error"] = "the model returned a non-finite log p(x)"
            else:
                best = int(np.argmax(posterior))
                record.update({"class": best, "probability": float(np.exp(posterior[best])),
                               "log_prob": float(log_prob),
                               "rejected": reject_below is not None and float(log_prob) < reject_below})
        yield record


def register(subparsers):
    p = subparsers.add_parser(
        "classify", help="classify with a class-conditional likelihood model, abstaining on unfamiliar inputs",
        description="Bayes' rule over the classes of a class-conditional likelihood model "
                    "(log p(x | y) from its log_prob signature, p(y) from its training data): each row's most probable class, its probability "
                    "p(y | x) and the marginal log p(x). With --reject-below or --threshold, a row "
                    "whose log p(x) is below the threshold is marked rejected (an out-of-distribution "
                    "input: its class is no decision). Inputs as `tfgen score`.")
    p.add_argument("--model", required=True, metavar="saved_models/NAME[/VERSION]")
    p.add_argument("--input", required=True, metavar="FILE | FOLDER", help="as for `tfgen score`")
    p.add_argument("--out", required=True, metavar="FILE.{parquet,csv,jsonl}",
                   help="index, key, class, probability, log_prob, rejected, error per row")
    p.add_argument("--batch-size", type=int, default=256, metavar="N")
    reject = p.add_mutually_exclusive_group()
    reject.add_argument("--reject-below", type=float, metavar="LOG_PROB",
                        help="reject rows with log p(x) below this (nats)")
    reject.add_argument("--threshold", metavar="FILE.json",
                        help="a `tfgen ood fit --score log_prob` threshold file")
    p.add_argument("--progress", action="store_true", default=None,
                   help="progress bar on stderr (default: only on a terminal)")
    p.set_defaults(func=run)
    return p


def run(args):
    from tfgen.scoring.inputs import input_format

    check_output(args.out)
    input_format(args.input)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.reject_below is not None and not math.isfinite(args.reject_below):
        raise UserError(f"--reject-below must be a finite number, got {args.reject_below}")
    reject_below = read_threshold(args.threshold) if args.threshold else args.reject_below
    classifier = Classifier(args.model)
    summary = classify_file(classifier, args.input, args.out, args.batch_size, reject_below, args.progress)
    print(f"tfgen classify: {classifier.source}: {summary.line()}; wrote {args.out}")
    if summary.rows and not summary.classified:
        print(f"tfgen classify: error: none of the {summary.rows} rows could be classified", file=sys.stderr)
        return 1
    return 0
