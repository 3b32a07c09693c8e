"""`tfgen sample` and `tfgen check`: argument parsing and printing only.

`tfgen sample --model saved_models/NAME[/VERSION] -n 16 --out grid.png` calls an
export's `sample` signature in this process (the newest version if none is named) and
writes an image grid, a 2-D scatter plot, or (for `--out *.npy`) the raw array.
`tfgen check PATH` runs the SavedModel conformance checks and exits 1 if any fails.
"""

import os


def register(subparsers):
    sample = subparsers.add_parser(
        "sample", help="draw samples from an exported model and save a picture",
        description="Calls the `sample` signature of an export with seeds S .. S+n-1 and writes "
                    "an image grid or 2-D scatter PNG (or the raw array for --out *.npy).",
    )
    sample.add_argument("--model", required=True, metavar="saved_models/NAME[/VERSION]",
                        help="an export; without VERSION the newest version")
    sample.add_argument("-n", "--num-samples", type=int, default=16, metavar="N", help="rows (default 16)")
    sample.add_argument("--out", required=True, metavar="PATH", help="output .png (or .npy for raw samples)")
    sample.add_argument("--temperature", type=float, default=1.0, metavar="T", help="latent scale (default 1.0)")
    sample.add_argument("--condition", type=int, metavar="C",
                        help="class id of a conditional model (default: cycle through the classes)")
    sample.add_argument("--seed", type=int, default=0, metavar="S", help="first seed (default 0)")
    # `--server HOST:PORT` (sampling from a running server through the same signature)
    # belongs here; the serving issue adds it by choosing another `_draw` below.
    sample.set_defaults(func=run_sample)

    check = subparsers.add_parser(
        "check", help="check that an export keeps the SavedModel contract",
        description="Loads the export with tf.saved_model.load (without tfgen), the TF1 Session "
                    "loader and saved_model_cli, and checks signature names, batching and ops.",
    )
    check.add_argument("path", metavar="PATH", help="saved_models/NAME[/VERSION] (default: newest version)")
    check.set_defaults(func=run_check)


def run_sample(args):
    from tfgen.data.spec import DataSpec
    from tfgen.export import reader

    version_dir = reader.resolve_version(args.model)
    spec = DataSpec.from_dict(reader.read_metadata(version_dir)["data_spec"])
    inputs = reader.sample_rows(args.num_samples, args.seed, args.temperature, args.condition,
                                spec.num_classes)
    samples = _draw(version_dir, inputs)
    path = _save(samples, spec, args.out)
    print(f"tfgen sample: wrote {args.num_samples} samples of {version_dir} to {path}")


def _draw(version_dir, inputs):
    """Samples from the export on disk (the hook a `--server` option replaces)."""
    from tfgen.export import reader

    return reader.call_signature(version_dir, "sample", inputs)["samples"]


def _save(samples, spec, path):
    import numpy as np

    from tfgen.data.visualize import save_samples_figure

    if path.endswith(".npy"):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        np.save(path, samples)
        return path
    return save_samples_figure(samples, spec, path)


def run_check(args):
    from tfgen.export.conformance import check_export
    from tfgen.export.reader import resolve_version

    report = check_export(resolve_version(args.path))
    print(report.table())
    return 0 if report.ok else 1

