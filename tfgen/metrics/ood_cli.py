"""`tfgen ood fit` / `tfgen ood apply`: OOD thresholds on `tfgen score` outputs. Wiring only.

    tfgen score --model saved_models/digits_realnvp --input held_out.npy --out in.parquet
    tfgen ood fit --scores in.parquet --fpr 0.05 --out threshold.json
    tfgen score --model saved_models/digits_realnvp --input new.npy --out new.parquet
    tfgen ood apply --threshold threshold.json --scores new.parquet --out flagged.csv

`--score likelihood_ratio` also takes `--background-scores` (the same rows scored by a
background model), `--score complexity` takes `--input` (the scored .npy images) and
`--levels`; see `tfgen.metrics.ood`.
"""

import json
import math
import sys


def register(subparsers):
    p = subparsers.add_parser("ood", help="out-of-distribution thresholds on tfgen score outputs",
                              description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="ood_command", metavar="{fit,apply}", required=True)
    fit = commands.add_parser("fit", help="fit a threshold on held-out in-distribution scores",
                              description="The threshold flagging at most --fpr of the given "
                                          "in-distribution rows (OOD score above it).")
    _score_arguments(fit)
    fit.add_argument("--fpr", type=float, default=0.05, help="in-distribution rows flagged (default 0.05)")
    fit.add_argument("--out", required=True, metavar="FILE.json")
    fit.set_defaults(func=run_fit)
    apply = commands.add_parser("apply", help="flag the rows of a score file above a fitted threshold")
    _score_arguments(apply)
    apply.add_argument("--threshold", required=True, metavar="FILE.json", help="from `tfgen ood fit`")
    apply.add_argument("--out", required=True, metavar="FILE.{parquet,csv,jsonl}",
                       help="index, key, log_prob, ood_score (bits, the value compared with the "
                            "threshold), rejected, error per row")
    apply.set_defaults(func=run_apply)
    return p


def _score_arguments(p):
    from tfgen.metrics.ood import SCORES

    p.add_argument("--scores", required=True, metavar="FILE", help="a `tfgen score` output")
    p.add_argument("--score", choices=SCORES, default="log_prob", help="the OOD score (default log_prob)")
    p.add_argument("--background-scores", metavar="FILE",
                   help="likelihood_ratio: the same rows scored by the background model")
    p.add_argument("--input", metavar="FILE.npy", help="complexity: the scored images [N, H, W, C]")
    p.add_argument("--levels", type=int, default=256, help="complexity: the images' levels (default 256)")


def _scores(args):
    """(records, OOD score per record or NaN where the row has none)."""
    import numpy as np

    from tfgen.errors import UserError
    from tfgen.metrics.ood import png_code_bits, score
    from tfgen.scoring.outputs import read_records

    records = read_records(args.scores)
    log_prob = np.array([np.nan if r["log_prob"] is None else r["log_prob"] for r in records])
    extra = {}
    if args.score == "likelihood_ratio":
        if not args.background_scores:
            raise UserError("--score likelihood_ratio needs --background-scores")
        background = read_records(args.background_scores)
        if [r["index"] for r in background] != [r["index"] for r in records]:
            raise UserError(f"{args.background_scores} does not hold the rows of {args.scores}")
        extra["background_log_prob"] = [np.nan if r["log_prob"] is None else r["log_prob"] for r in background]
    if args.score == "complexity":
        if not args.input:
            raise UserError("--score complexity needs --input, the scored images")
        images = np.load(args.input, allow_pickle=False)
        if len(images) != len(records):
            raise UserError(f"{args.input} has {len(images)} rows, {args.scores} {len(records)}")
        extra["code_bits"] = png_code_bits(images, args.levels)
    return records, score(args.score, log_prob, **extra)


def run_fit(args):
    import numpy as np

    from tfgen.errors import UserError
    from tfgen.files import write_json
    from tfgen.metrics.ood import fit_threshold

    records, scores = _scores(args)
    finite = scores[np.isfinite(scores)]
    if not len(finite):
        raise UserError(f"{args.scores}: no row has a finite score")
    try:
        threshold = fit_threshold(finite, args.fpr)
    except ValueError as e:
        raise UserError(str(e)) from None
    write_json(args.out, {"score": args.score, "threshold": threshold, "false_positive_rate": args.fpr,
                          "fitted_on": args.scores, "rows": int(len(finite))})
    print(f"tfgen ood fit: {args.score} threshold {threshold:.4f} bits from {len(finite)} rows "
          f"({len(records) - len(finite)} without a score); flags {np.mean(finite > threshold):.3f} "
          f"of them; wrote {args.out}")
    return 0


def run_apply(args):
    from tfgen.errors import UserError
    from tfgen.files import atomic_open
    from tfgen.scoring.outputs import WRITERS, check_output, open_writer

    ext = check_output(args.out)
    try:
        with open(args.threshold) as f:
            fitted = json.load(f)
        threshold = float(fitted["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"--threshold {args.threshold}: not a `tfgen ood fit` file ({e})") from None
    if fitted.get("score") != args.score:
        raise UserError(f"--threshold {args.threshold} was fitted on score {fitted.get('score')!r}, "
                        f"not {args.score!r} (pass --score {fitted.get('score')})")
    records, scores = _scores(args)
    flagged = 0
    fields = ("index", "key", "log_prob", "ood_score", "rejected", "error")
    with atomic_open(args.out, WRITERS[ext][1], **({} if ext == ".parquet" else {"newline": ""})) as f:
        writer = open_writer(f, ext, fields)
        for record, value in zip(records, scores):
            ok = math.isfinite(value)
            flagged += bool(ok and value > threshold)
            writer.write({"index": record["index"], "key": record["key"], "log_prob": record["log_prob"],
                          "ood_score": float(value) if ok else None,
                          "rejected": bool(value > threshold) if ok else None,
                          "error": None if ok else (record["error"] or "no finite score")})
        writer.close()
    print(f"tfgen ood apply: {flagged} of {len(records)} rows flagged out-of-distribution "
          f"({args.score} above {threshold:.4f}); wrote {args.out}")
    if records and all(not math.isfinite(v) for v in scores):
        print("tfgen ood apply: error: no row has a finite score", file=sys.stderr)
        return 1
    return 0
