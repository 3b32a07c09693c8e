"""`tfgen score`: streaming, resumable log_prob scoring of a file, locally or through a
server. Wiring only.

    tfgen score --model saved_models/digits_realnvp --input x.npy --out scores.parquet
    tfgen score --server 127.0.0.1:8500 --model digits_realnvp --input x.csv --out scores.csv
    tfgen score --model saved_models/digits_realnvp --input big.tfrecord --out s.jsonl --resume

Exits 1 when no row could be scored (the output still says why for each).
"""

import argparse
import sys


def register(subparsers):
    p = subparsers.add_parser(
        "score", help="score a file with a model's log_prob signature (a CSV row per input row)",
        description="Calls the `log_prob` signature on every row of FILE (.npy, .npz or .csv), "
                    "in batches, in this process (--model PATH) or on a TF Serving API server "
                    "(--server HOST:PORT --model NAME), and writes index, log_prob, bits_per_dim, "
                    "is_finite, error for every row: a row that cannot be scored keeps its place "
                    "with an error instead of being dropped.",
    )
    p.add_argument("--model", required=True, metavar="saved_models/NAME[/VERSION] | NAME",
                   help="an export (newest version if none); with --server, the served model's name")
    p.add_argument("--server", metavar="HOST:PORT", help="score through a running server (gRPC)")
    p.add_argument("--version", type=int, metavar="N", help="model version (default: newest)")
    p.add_argument("--input", required=True, metavar="FILE | FOLDER",
                   help=".npy [N, *event], .npz (array x), .csv (one flattened example per line), "
                        ".parquet (list column x, or numeric columns), .tfrecord (tf.train.Example, "
                        "float_list feature x), or a folder of PNG/JPEG or WAV files (one subfolder "
                        "per class for conditional models)")
    p.add_argument("--out", required=True, metavar="FILE.{parquet,csv,jsonl}",
                   help="output file; its extension picks the format")
    p.add_argument("--batch-size", type=int, default=256, metavar="N",
                   help="rows per signature call (default 256)")
    p.add_argument("--condition-column", metavar="COL",
                   help="conditional models: the CSV column (header name or 0-based number) or "
                        ".npz array holding each row's class (default for .npz: condition)")
    p.add_argument("--condition-file", metavar="FILE",
                   help="conditional models: the classes, .npy [N] or one integer per line")
    p.add_argument("--key-column", metavar="COL",
                   help="the column (.csv, .parquet), array (.npz) or bytes feature (.tfrecord) "
                        "holding each row's key, written beside its index (folders: the file names)")
    p.add_argument("--shard-rows", type=int, metavar="N",
                   help="rows per resumable shard (default 64 batches)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run of the same --out from its last finished shard")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar with rows/s on stderr (default: only on a terminal)")
    p.set_defaults(func=run)
    return p


def check_paths(args):
    """The files the command needs, checked before TensorFlow is imported (seconds)."""
    import os

    from tfgen.errors import MissingPath

    from tfgen.scoring.inputs import input_format
    from tfgen.scoring.outputs import check_output

    check_output(args.out)
    input_format(args.input)
    if args.condition_file and not os.path.isfile(args.condition_file):
        raise MissingPath(f"--condition-file {args.condition_file} does not exist")
    if not args.server and not os.path.isdir(args.model):
        raise MissingPath(f"no model directory {args.model}")


def run(args):
    from tfgen.errors import UserError
    from tfgen.scoring.score import LocalScorer, ServerScorer, Unreachable, score_file

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    check_paths(args)
    try:
        if args.server:
            scorer = ServerScorer(args.server, args.model, args.version)
        else:
            scorer = LocalScorer(args.model, args.version)
        try:
            summary = score_file(scorer, args.input, args.out, args.batch_size,
                                 args.condition_column, args.condition_file, args.key_column,
                                 args.shard_rows, args.resume, args.progress)
        finally:
            scorer.close()
    except Unreachable as e:
        raise UserError(str(e)) from None
    print(f"tfgen score: {scorer.source}: {summary.line()}; wrote {args.out}")
    if summary.rows and not summary.scored:
        # The CSV is written (each row says why), but a run that scored nothing failed.
        print(f"tfgen score: error: none of the {summary.rows} rows could be scored",
              file=sys.stderr)
        return 1
    return 0
