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
                    "with an error instead of being dropped. With --runner, the same rows go through "
                    "an Apache Beam pipeline whose workers read --input, load --model and write --out "
                    "by path (local, or gs://, s3://, hdfs:// URLs; docs/beam.md).",
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
    p.add_argument("--runner", metavar="NAME",
                   help="score through Apache Beam's RunInference on this runner (DirectRunner, "
                        "FlinkRunner, SparkRunner, DataflowRunner; needs `pip install tfgen[beam]`)")
    p.add_argument("--pipeline-option", action="append", default=[], metavar="--FLAG=VALUE",
                   help="a Beam pipeline option passed through, e.g. --pipeline-option=--direct_num_workers=2 "
                        "(repeat for several; see docs/beam.md for Flink, Spark and Dataflow)")
    p.add_argument("--out-shards", type=int, default=1, metavar="N",
                   help="with --runner: write N files NAME-SSSSS-of-NNNNN.EXT instead of one (default 1); "
                        "rows come in the runner's order, join on index")
    p.set_defaults(func=run)
    return p


def check_paths(args):
    """The files the command needs, checked before TensorFlow is imported (seconds);
    with --runner, URLs are checked on the workers' file systems instead."""
    import os

    from tfgen.errors import MissingPath, UserError

    from tfgen.scoring.inputs import input_format, is_url
    from tfgen.scoring.outputs import check_output

    check_output(args.out)
    if is_url(args.out) and not args.runner:
        raise UserError(f"--out {args.out}: URLs are written by `tfgen score --runner` (Apache Beam's "
                        "file sinks); give a local path here")
    input_format(args.input, urls=bool(args.runner))
    if args.condition_file and not is_url(args.condition_file) and not os.path.isfile(args.condition_file):
        raise MissingPath(f"--condition-file {args.condition_file} does not exist")
    if not args.server and not is_url(args.model) and not os.path.isdir(args.model):
        raise MissingPath(f"no model directory {args.model}")


def run(args):
    from tfgen.errors import UserError
    from tfgen.scoring.score import LocalScorer, ServerScorer, Unreachable, score_file

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.out_shards != 1 and not args.runner:
        raise UserError("--out-shards is for --runner (Beam's sinks); the local path writes one file")
    if args.out_shards < 1:
        raise UserError(f"--out-shards must be >= 1, got {args.out_shards}")
    check_paths(args)
    if args.runner:
        return run_beam(args)
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


def run_beam(args):
    """`tfgen score --runner NAME`: the file through `tfgen.scoring.beam.build_pipeline`."""
    import time

    from tfgen.errors import UserError
    from tfgen.scoring.inputs import filesystems, is_url
    from tfgen.scoring.score import LocalScorer

    if args.server or args.resume:
        raise UserError("--runner scores an export (--model PATH) and has no --resume "
                        "(the runner retries failed work itself)")
    try:
        from tfgen.scoring.beam import new_pipeline, score_with_beam
    except ImportError as e:
        raise UserError(f"--runner needs Apache Beam: pip install 'tfgen[beam]' ({e})") from None
    new_pipeline(args.runner, args.pipeline_option)  # a bad runner or flag is refused before the model loads
    local = [f"{flag} {path}" for flag, path in (("--model", args.model), ("--input", args.input),
                                                   ("--out", args.out)) if not is_url(path)]
    if local and args.runner not in ("DirectRunner", "direct"):
        print(f"tfgen score: note: {', '.join(local)} must be readable (and --out writable) at the "
              f"same path on every {args.runner} worker", file=sys.stderr)
    if is_url(args.out):
        filesystems(args.out)  # the Beam extra for the output's scheme, before any work
    scorer = LocalScorer(args.model, args.version)  # the rows' shapes and the model's spec
    start = time.monotonic()
    counts = score_with_beam(scorer, args.input, args.out, args.runner, args.pipeline_option,
                             batch_size=args.batch_size, condition_column=args.condition_column,
                             condition_file=args.condition_file, key_column=args.key_column,
                             num_shards=args.out_shards)
    seconds = time.monotonic() - start
    print(f"tfgen score: {scorer.source} on {args.runner}: {counts['rows']} rows: {counts['scored']} "
          f"scored, {counts['errors']} not scored (see their error column), {counts['non_finite']} "
          f"scored with a non-finite log_prob; {seconds:.1f} s; wrote {args.out}")
    if counts["rows"] and not counts["scored"]:
        print(f"tfgen score: error: none of the {counts['rows']} rows could be scored", file=sys.stderr)
        return 1
    return 0
