"""`tfgen interpolate`, `tfgen attribute`, `tfgen reconstruct`: the latent-space tools
(`tfgen.latent.space`) on an export or a served model. Argument parsing, example rows
and output files only.

    tfgen reconstruct --model saved_models/digits_realnvp --dataset digits --rows 0-7 --out rec.png
    tfgen interpolate --model saved_models/digits_realnvp --dataset digits --rows 3,17 --out strip.png
    tfgen interpolate --model saved_models/digits_realnvp --seeds 0,1 --method slerp --out strip.png
    tfgen attribute --model saved_models/digits_realnvp --dataset digits --with-label 1 --rows 0,5 --out a.png
    tfgen reconstruct --server 127.0.0.1:8500 --model digits_realnvp --input x.npy --out rec.npy

Examples come from a built-in dataset (`--dataset NAME`, rows of `--split`, default the
held-out test split, with its class labels) or a file (`--input`, .npy/.npz/.csv as
`tfgen score` reads them; labels from `--label-column`). `--out *.png` writes an image
grid (image data), `--out *.npy` the array of the grid's rows `[rows, columns, *event]`
(any data).
"""

from tfgen.errors import UserError

_COMMON_EPILOG = (
    "Examples come from --dataset NAME (rows of --split, default test; class labels included) "
    "or --input FILE (.npy [N, *event], .npz array x, or .csv with one flattened example per "
    "line; labels from --label-column). --rows takes 3,17 or ranges 0-7. A conditional model "
    "gets --condition C for every row, or else each dataset row's own label. A stochastic "
    "encoder (VAE) codes an input by its posterior mean (--code mean) or by its draw keyed by "
    "--seed (--code draw). --out *.png writes an image grid (image data only); --out *.npy "
    "writes the grid's rows as an array [rows, columns, *event] for any data.")


def register(subparsers):
    interpolate = subparsers.add_parser(
        "interpolate", help="decode a path between two inputs' codes (or two seeds' prior draws)",
        description="Encodes two examples (--rows A,B) and decodes --steps codes on the path between "
                    "them, linear or spherical (slerp), or, with --seeds A,B, between the standard "
                    "normal draws those seeds key (what a flow samples from; works for decode-only "
                    "models too). Writes one strip per method, t = 0 .. 1 left to right.",
        epilog=_COMMON_EPILOG)
    _common(interpolate, default_rows=None)
    interpolate.add_argument("--seeds", metavar="A,B",
                             help="interpolate between the prior draws of two seeds (default 0,1 when "
                                  "neither --dataset nor --input is given)")
    interpolate.add_argument("--steps", type=int, default=8, metavar="N", help="codes on the path (default 8)")
    interpolate.add_argument("--method", choices=("linear", "slerp", "both"), default="linear",
                             help="linear, spherical (slerp), or both (two strips; default linear)")
    interpolate.set_defaults(func=run_interpolate)

    attribute = subparsers.add_parser(
        "attribute", help="add an attribute vector (mean code with a label minus without) to inputs",
        description="The attribute vector is the mean code of the examples with the label (--with-label) "
                    "minus the mean code of those without it (--without-label, default: every other "
                    "label), over the chosen split or file: the 'smile vector'. Each of --rows gets its "
                    "code plus each of --strengths times the vector, decoded: one row per input, one "
                    "column per strength (0 is the plain reconstruction).",
        epilog=_COMMON_EPILOG)
    _common(attribute, default_rows="0,1,2")
    attribute.add_argument("--with-label", metavar="L[,L...]",
                           help="labels that have the attribute, e.g. 1 for 'digit == 1 vs the rest'")
    attribute.add_argument("--without-label", metavar="L[,L...]",
                           help="labels that lack it (default: all the others)")
    attribute.add_argument("--strengths", default="-2,-1,0,1,2", metavar="S,S,...",
                           help="multiples of the vector to add (default -2,-1,0,1,2; write --strengths=-1,1 when the "
                                "first is negative)")
    attribute.add_argument("--vector", metavar="FILE.npy", help="use this attribute vector instead of computing one")
    attribute.add_argument("--save-vector", metavar="FILE.npy", help="also write the attribute vector")
    attribute.set_defaults(func=run_attribute)

    reconstruct = subparsers.add_parser(
        "reconstruct", help="decode(encode(x)): inputs above, reconstructions below",
        description="Calls the reconstruct signature (or encode then decode, for exports made before "
                    "it existed) on --rows and writes a grid of two rows: the inputs, and under each "
                    "its reconstruction. A stochastic encoder decodes its draw keyed by --seed + row "
                    "(--code mean: its posterior mean).",
        epilog=_COMMON_EPILOG)
    _common(reconstruct, default_rows="0-7", default_code="draw")
    reconstruct.set_defaults(func=run_reconstruct)


def _common(parser, default_rows, default_code="mean"):
    parser.add_argument("--model", required=True, metavar="saved_models/NAME[/VERSION] | NAME",
                        help="an export (without VERSION the newest); with --server, the served model's name")
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="call a running TF Serving API server (gRPC) instead of loading the export here")
    parser.add_argument("--version", type=int, metavar="N", help="model version (default: the newest)")
    parser.add_argument("--out", required=True, metavar="FILE.png | FILE.npy",
                        help="image grid (.png, image data) or array (.npy)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", metavar="NAME", help="a built-in dataset, e.g. digits")
    source.add_argument("--input", metavar="FILE", help="examples from .npy, .npz or .csv")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"),
                        help="--dataset split to take rows from (default test)")
    parser.add_argument("--label-column", metavar="COL",
                        help="--input labels: a .csv column (header name or 0-based number) or .npz array")
    parser.add_argument("--rows", default=default_rows, metavar="I,J | I-J",
                        help="which examples" + (f" (default {default_rows})" if default_rows else
                                                 " (two rows, e.g. 3,17)"))
    parser.add_argument("--condition", type=int, metavar="C",
                        help="class of every row for a conditional model (default: each row's label)")
    parser.add_argument("--code", choices=("mean", "draw"), default=default_code,
                        help="stochastic encoders: code an input by the posterior mean or a seeded draw "
                             f"(default {default_code})")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="first seed of the rows' posterior draws (stochastic encoders; default 0)")


# === Inputs ===

def _parse_ints(text, what):
    """`3,17` or ranges `0-7` (inclusive) -> a list of ints."""
    import re

    values = []
    for part in str(text).split(","):
        match = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", part)
        if not match:
            raise UserError(f"{what} must be integers like 3,17 or 0-7, got {text!r}")
        first, last = int(match[1]), int(match[2] if match[2] is not None else match[1])
        values.extend(range(first, last + 1))
    if not values:
        raise UserError(f"{what}: no values in {text!r}")
    return values


def _parse_floats(text, what):
    import math

    try:
        values = [float(v) for v in str(text).split(",")]
    except ValueError:
        raise UserError(f"{what} must be numbers like -1,0,1, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"{what} must be finite, got {text!r}")
    return values


def _examples(args, event_shape):
    """The `_Examples` of --dataset or --input."""
    import numpy as np

    if not (args.dataset or args.input):
        raise UserError("give the examples with --dataset NAME (e.g. digits) or --input FILE")
    if args.dataset:
        from tfgen.data.datasets import load_dataset

        if args.label_column:
            raise UserError("--label-column is for --input files; a --dataset brings its own labels")
        split = load_dataset({"name": args.dataset}).splits.get(args.split)
        if split is None:
            raise UserError(f"dataset {args.dataset!r} has no {args.split} split")
        if tuple(split.x.shape[1:]) != tuple(event_shape):
            raise UserError(f"dataset {args.dataset!r} has examples of shape {list(split.x.shape[1:])}; the "
                            f"model takes {list(event_shape)}")
        return _Examples(split.x, split.y, f"the {args.split} split of {args.dataset}")
    from tfgen.scoring.inputs import read_rows

    rows = list(read_rows(args.input, event_shape, conditional=args.label_column is not None,
                          condition_column=args.label_column))
    if not rows:
        raise UserError(f"{args.input} holds no examples")
    # A row that cannot be read stays in place (zeros, label -1) so row numbers keep
    # their meaning; it is an error only if picked (`_Examples.pick`).
    x = np.stack([np.zeros(event_shape, np.float32) if row.error else row.x for row in rows])
    labels = None
    if args.label_column is not None:
        labels = np.array([-1 if row.error else row.condition for row in rows])
    return _Examples(x, labels, args.input, {row.index: row.error for row in rows if row.error})


class _Examples:
    """Examples `x` `[N, *event]`, their `labels` `[N]` (or None), where they come from,
    and `{row: error}` of the rows that could not be read."""

    def __init__(self, x, labels, where, errors=None):
        self.x, self.labels, self.where, self.errors = x, labels, where, errors or {}

    def pick(self, rows):
        """`rows`, checked to be in range and readable."""
        for row in rows:
            if not 0 <= row < len(self.x):
                raise UserError(f"row {row} is out of range: {self.where} has {len(self.x)} rows "
                                f"(0 .. {len(self.x) - 1})")
            if row in self.errors:
                raise UserError(f"{self.where} row {row}: {self.errors[row]}")
        return rows


def _conditions(args, space, labels, rows):
    """The class of each picked row for a conditional model, else None."""
    if not space.conditional:
        if args.condition is not None:
            raise UserError(f"{space.caller.source} is unconditional: drop --condition")
        return None
    if args.condition is not None:
        return args.condition
    if labels is None:
        raise UserError(f"{space.caller.source} is conditional: give the class with --condition")
    return labels[rows]


def _open(args):
    from tfgen.latent.callers import LocalCaller, ServerCaller
    from tfgen.latent.space import LatentSpace

    if args.server:
        caller = ServerCaller(args.server, args.model, args.version)
    else:
        import os

        caller = LocalCaller(args.model if args.version is None else os.path.join(args.model, str(args.version)))
    try:
        return LatentSpace(caller), caller.data_spec()
    except BaseException:
        caller.close()
        raise


def _write(grid, spec, path):
    """Writes grid rows `[rows, columns, *event]` as an image grid (.png) or an array (.npy)."""
    import numpy as np

    if path.endswith(".npy"):
        from tfgen.files import atomic_open

        with atomic_open(path, "wb") as f:
            np.save(f, grid)
        return path
    if not path.endswith(".png"):
        raise UserError(f"--out must end in .png (image grid) or .npy (array), got {path}")
    if spec.kind != "image":
        raise UserError(f"{spec.kind} data has no picture: use --out FILE.npy")
    from tfgen.data.visualize import save_image_grid

    rows, columns = grid.shape[:2]
    save_image_grid(grid.reshape(rows * columns, *grid.shape[2:]), spec, path, num_columns=columns)
    return path


# === Commands ===

def run_interpolate(args):
    import numpy as np

    methods = ("linear", "slerp") if args.method == "both" else (args.method,)
    between_seeds = args.seeds is not None or not (args.dataset or args.input)
    if between_seeds:
        if args.rows:
            raise UserError("--rows picks examples of --dataset or --input; give one of them (or use --seeds)")
        seeds = _pick_two(_parse_ints(args.seeds or "0,1", "--seeds"), "--seeds")
    space, spec = _open(args)
    try:
        if between_seeds:
            condition = _conditions(args, space, None, None)
            strips = [space.interpolate_seeds(*seeds, args.steps, m, condition) for m in methods]
            what = f"seeds {seeds[0]} and {seeds[1]}"
        else:
            examples = _examples(args, space.event_shape)
            rows = examples.pick(_pick_two(_parse_ints(args.rows or "0,1", "--rows"), "--rows"))
            condition = _conditions(args, space, examples.labels, rows)
            if condition is not None and not np.isscalar(condition):
                condition = int(condition[0])  # one class for the whole path: the first row's
            x = examples.x
            strips = [space.interpolate_inputs(x[rows[0]], x[rows[1]], args.steps, m, condition,
                                               [args.seed + row for row in rows], args.code) for m in methods]
            what = f"rows {rows[0]} and {rows[1]} of {examples.where}"
        path = _write(np.stack(strips), spec, args.out)
    finally:
        space.caller.close()
    print(f"tfgen interpolate: {space.caller.source}: {args.steps} steps between {what} "
          f"({', '.join(methods)}); wrote {path}")


def _pick_two(values, what):
    if len(values) != 2:
        raise UserError(f"{what} takes exactly two values, got {values}")
    return values


def run_attribute(args):
    import numpy as np

    from tfgen.files import atomic_open

    strengths = _parse_floats(args.strengths, "--strengths")
    space, spec = _open(args)
    try:
        examples = _examples(args, space.event_shape)
        x, labels, where = examples.x, examples.labels, examples.where
        rows = examples.pick(_parse_ints(args.rows, "--rows"))
        if args.vector:
            vector, about = _read_vector(args.vector), args.vector
        else:
            if not args.with_label:
                raise UserError("give --with-label (the labels that have the attribute) or --vector")
            if labels is None:
                raise UserError(f"{where} has no labels: use a dataset with classes or --label-column")
            positive = set(_parse_ints(args.with_label, "--with-label"))
            readable = [label for row, label in enumerate(labels.tolist()) if row not in examples.errors]
            negative = (set(_parse_ints(args.without_label, "--without-label")) if args.without_label
                        else set(readable) - positive)
            if positive & negative:
                raise UserError(f"labels {sorted(positive & negative)} are both with and without the attribute")
            everyone = np.asarray(examples.pick(
                np.flatnonzero(np.isin(labels, sorted(positive | negative))).tolist()), np.int64)
            vector = space.attribute_vector(x[everyone], np.isin(labels[everyone], sorted(positive)),
                                            _conditions(args, space, labels, everyone),
                                            args.seed + everyone, args.code)
            about = (f"labels {sorted(positive)} vs {'the rest' if not args.without_label else sorted(negative)} "
                     f"over {len(everyone)} examples of {where}")
        grid = space.apply_attribute(x[rows], vector, strengths, _conditions(args, space, labels, rows),
                                     args.seed + np.asarray(rows), args.code)
        path = _write(grid, spec, args.out)
        if args.save_vector:
            with atomic_open(args.save_vector, "wb") as f:
                np.save(f, vector)
    finally:
        space.caller.close()
    print(f"tfgen attribute: {space.caller.source}: attribute vector of {about} (norm "
          f"{float(np.linalg.norm(vector)):.3g}) at strengths {strengths} on rows {rows}; wrote {path}")


def _read_vector(path):
    import os

    import numpy as np

    from tfgen.errors import MissingPath

    if not os.path.isfile(path):
        raise MissingPath(f"no vector file {path}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise UserError(f"{path}: not a .npy array ({e})") from None


def run_reconstruct(args):
    import numpy as np

    space, spec = _open(args)
    try:
        examples = _examples(args, space.event_shape)
        rows = examples.pick(_parse_ints(args.rows, "--rows"))
        x = examples.x[rows]
        reconstructions = space.reconstruct(x, _conditions(args, space, examples.labels, rows),
                                            args.seed + np.asarray(rows), args.code)
        path = _write(np.stack([x, reconstructions]), spec, args.out)
    finally:
        space.caller.close()
    error = float(np.mean(np.abs(reconstructions - x)))
    print(f"tfgen reconstruct: {space.caller.source}: rows {rows} of {examples.where}, mean |x - reconstruction| "
          f"{error:.4g}; wrote {path}")

