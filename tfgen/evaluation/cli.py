"""`tfgen evaluate` and `tfgen train-classifier`: argument parsing and printing only.

    tfgen evaluate --model saved_models/digits_vae
    tfgen evaluate --model saved_models/digits_conditional_glow --json figures.json
    tfgen evaluate --server 127.0.0.1:8500 --model digits_vae --dataset digits
    tfgen train-classifier tf_configs/feature_networks/digits_classifier.yaml --out my_classifier
"""

from tfgen.errors import UserError

_EVALUATE_EPILOG = (
    "Figures: Frechet distance and KID (unbiased MMD^2 with the cubic polynomial kernel; mean and "
    "standard error over disjoint subsets) between the features of the samples and of the reference "
    "split; precision and recall of k-NN manifolds (Kynkaanniemi et al. 2019); on eight_gaussians the "
    "modes that get samples and the fraction of samples within 3 standard deviations of a mode; for a "
    "conditional model scored by a classifier, the fraction classified as the requested class. "
    "Feature networks: digits_classifier (shipped; 8x8 digits), inception_v3 (needs "
    "--inception-weights, a local Keras .h5 file: nothing is downloaded), raw (the data itself; 2-D "
    "toys), or a directory written by tfgen train-classifier. FD is biased upwards at small sample "
    "sizes, so compare models at the same -n; preprocessing and sizes are in the output.")


def register(subparsers):
    evaluate = subparsers.add_parser(
        "evaluate", help="sample-quality metrics of a model: FD, KID, precision/recall",
        description="Draws samples from an export's sample signature (or, with --server, from a served "
                    "model over gRPC) with seeds S .. S+n-1 and compares them with the held-out split of "
                    "the model's dataset (read from the export's tfgen.json; with --server, name it with "
                    "--dataset). A conditional model draws for the reference rows' labels. Prints a table; "
                    "--json prints JSON instead, --json FILE writes it too.",
        epilog=_EVALUATE_EPILOG)
    evaluate.add_argument("--model", "--model-name", dest="model", required=True,
                          metavar="saved_models/NAME[/VERSION] | NAME",
                          help="an export (without VERSION the newest); with --server, the served model's name")
    evaluate.add_argument("--server", metavar="HOST:PORT",
                          help="call a running TF Serving API server (gRPC) instead of loading the export here")
    evaluate.add_argument("--version", type=int, metavar="N", help="model version (default: the newest)")
    evaluate.add_argument("--dataset", metavar="NAME",
                          help="the reference dataset (default: the one the export was trained on; "
                               "required with --server)")
    evaluate.add_argument("--split", default="test", choices=("validation", "test", "train"),
                          help="reference split (default test)")
    evaluate.add_argument("-n", "--num-samples", type=int, metavar="N",
                          help="samples to draw (default: as many as the reference split holds)")
    evaluate.add_argument("--seed", type=int, default=0, metavar="S",
                          help="first sample seed; also seeds KID's subsets (default 0)")
    evaluate.add_argument("--temperature", type=float, default=1.0, metavar="T", help="sampling temperature (default 1.0)")
    evaluate.add_argument("--feature-network", metavar="NAME|DIR",
                          help="digits_classifier, inception_v3, raw or a classifier directory (default: "
                               "digits_classifier for 8x8 digits, raw for small vectors)")
    evaluate.add_argument("--inception-weights", metavar="FILE.h5",
                          help="InceptionV3 weights (Keras .h5, with or without the top) for inception_v3")
    evaluate.add_argument("-k", type=int, default=3, metavar="K", help="precision/recall neighbour (default 3)")
    evaluate.add_argument("--kid-subsets", type=int, default=10, metavar="M",
                          help="KID's disjoint subsets (default 10; at most half the smaller set)")
    evaluate.add_argument("--batch-size", type=int, default=256, metavar="B", help="rows per sample call (default 256)")
    evaluate.add_argument("--json", nargs="?", const="-", metavar="FILE",
                          help="print the figures as JSON instead of a table (--json), or also write them to FILE")
    evaluate.set_defaults(func=run_evaluate)

    train = subparsers.add_parser(
        "train-classifier", help="train a classifier whose features the metrics use",
        description="Trains the classifier of a config (tf_configs/feature_networks/*.yaml) on the train "
                    "split of its dataset only and writes config.json and weights.h5 to --out, a new "
                    "directory that --feature-network DIR then uses. Prints the held-out accuracies.")
    train.add_argument("config", metavar="CONFIG", help="e.g. tf_configs/feature_networks/digits_classifier.yaml")
    train.add_argument("--out", required=True, metavar="DIR", help="a directory that does not exist yet")
    train.set_defaults(func=run_train_classifier)


def _open_caller(args):
    from tfgen.latent.callers import LocalCaller, ServerCaller

    if args.server:
        return ServerCaller(args.server, args.model, args.version)
    import os

    return LocalCaller(args.model if args.version is None else os.path.join(args.model, str(args.version)))


def _reference_data(args, caller):
    """The dataset config of the reference split: --dataset, else the export's training data."""
    recorded = getattr(caller, "metadata", {}).get("training_data", {}).get("data")
    if args.dataset:
        if recorded and recorded.get("name") == args.dataset:
            return recorded  # the same split options the model was trained with
        return {"name": args.dataset}
    if recorded:
        return recorded
    raise UserError(f"{caller.source}: name the reference dataset with --dataset (a served model records none)")


def _progress(total):
    """A progress bar on stderr when it is a terminal (stdout may be carrying JSON)."""
    import sys

    if not sys.stderr.isatty():
        return None
    import contextlib

    from tfgen.backend import keras

    with contextlib.redirect_stdout(sys.stderr):
        bar = keras.utils.Progbar(total, unit_name="sample")

    def advance(rows):
        with contextlib.redirect_stdout(sys.stderr):
            bar.add(rows)

    return advance


def run_evaluate(args):
    import json

    from tfgen.data.datasets import load_dataset
    from tfgen.evaluation.evaluate import evaluate, rows_seen_in_training
    from tfgen.metrics.features import default_feature_network, load_feature_network
    from tfgen.metrics.report import format_table, mode_model

    for name, value, low in (("-n", args.num_samples, 2), ("-k", args.k, 1), ("--kid-subsets", args.kid_subsets, 1),
                             ("--batch-size", args.batch_size, 1)):
        if value is not None and value < low:
            raise UserError(f"{name} must be >= {low}, got {value}")
    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0, got {args.temperature}")
    if args.server and not args.dataset:
        raise UserError("with --server, name the reference dataset with --dataset (a TF Serving client reads no files)")
    caller = _open_caller(args)
    try:
        if "sample" not in caller.signatures:
            raise UserError(f"{caller.source} has no sample signature (it has {sorted(caller.signatures)}): "
                            "nothing to evaluate")
        spec = caller.data_spec()
        data_config = _reference_data(args, caller)
        reference = load_dataset(data_config).splits.get(args.split)
        if reference is None:
            raise UserError(f"dataset {data_config['name']!r} has no {args.split} split")
        network_name = args.feature_network or default_feature_network(spec)
        if network_name is None:
            raise UserError(f"no default feature network for {spec.kind} data of shape {list(spec.event_shape)}: "
                            "name one with --feature-network (inception_v3 with --inception-weights for images)")
        network = load_feature_network(network_name, args.inception_weights)
        network.check(spec)
        num_samples = args.num_samples or len(reference)
        advance = _progress(num_samples)
        figures = evaluate(caller, reference, spec, network, num_samples, args.seed, args.temperature,
                           modes=mode_model(data_config), batch_size=args.batch_size, progress=advance,
                           k=args.k, kid_subsets=args.kid_subsets)
    finally:
        caller.close()
    figures = {"model": caller.source, "dataset": data_config, "split": args.split, **figures,
               "reference_rows_in_feature_training": rows_seen_in_training(network, reference, spec)}
    if args.json and args.json != "-":
        from tfgen.files import write_json

        write_json(args.json, figures)
    if args.json == "-":
        print(json.dumps(figures, indent=2, sort_keys=True))
        return
    print(format_table(figures, f"tfgen evaluate: {caller.source} vs the {args.split} split of "
                                f"{data_config['name']} (seeds {args.seed} .. {args.seed + num_samples - 1}, "
                                f"temperature {args.temperature:g})"))
    if figures["reference_rows_in_feature_training"]:
        print(f"  note: {figures['reference_rows_in_feature_training']} reference rows also occur in the feature "
              "network's training data")
    if args.json:
        print(f"  wrote {args.json}")


def run_train_classifier(args):
    from tfgen.evaluation.classifier import load_classifier_config, train_classifier

    document = train_classifier(load_classifier_config(args.config), args.out,
                                log=lambda message: print(f"tfgen train-classifier: {message}", flush=True))
    print(f"tfgen train-classifier: wrote {args.out} (test accuracy {document['accuracy']['test']['accuracy']:.4f})")
