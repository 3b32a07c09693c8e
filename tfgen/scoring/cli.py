"""`tfgen score`: batch log_prob scoring of a file, locally or through a server. Wiring only.

    tfgen score --model saved_models/digits_realnvp --input x.npy --out scores.csv
    tfgen score --server 127.0.0.1:8500 --model digits_realnvp --input x.csv --out scores.csv

Exits 1 when no row could be scored (the CSV still says why for each).
"""

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
    p.add_argument("--input", required=True, metavar="FILE",
                   help=".npy [N, *event], .npz (array x), or .csv (one flattened example per line)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="output CSV")
    p.add_argument("--batch-size", type=int, default=256, metavar="N",
                   help="rows per signature call (default 256)")
    p.add_argument("--condition-column", metavar="COL",
                   help="conditional models: the CSV column (header name or 0-based number) or "
                        ".npz array holding each row's class (default for .npz: condition)")
    p.add_argument("--condition-file", metavar="FILE",
                   help="conditional models: the classes, .npy [N] or one integer per line")
    p.set_defaults(func=run)
    return p


def check_paths(args):
    """The files the command needs, checked before TensorFlow is imported (seconds)."""
    import os

    from tfgen.errors import MissingPath

    for flag, path in (("--input", args.input), ("--condition-file", args.condition_file)):
        if path and not os.path.isfile(path):
            raise MissingPath(f"no input file {path}" if flag == "--input"
                              else f"{flag} {path} does not exist")
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
                                 args.condition_column, args.condition_file)
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
