"""`tfgen train CONFIG` and `tfgen export RUN_DIR`: argument parsing only.

TensorFlow is imported when a command runs, not when `tfgen --help` builds the parser.
"""

import os
import sys
from tfgen.errors import UserError
from tfgen.training import init_from

TRAIN_HELP = """\
Train a model from a YAML config (sections: model, data, training, strategy,
checkpoint, tensorboard, export, run_dir; see tf_configs/*.yaml and
tfgen/training/config.py). Writes RUN_DIR/{config.yaml, model.json, checkpoints/,
logs/, history.csv, metrics.json} and, unless --no-export, a SavedModel version.
Multi-worker: set strategy.name: multi_worker and TF_CONFIG in each process
(tf_configs/cluster/README.md), or try it on this machine with --workers N.
Faults (a lost worker, SIGTERM, a non-finite step): the `faults` config section;
restart every worker with --resume after one (docs/architecture.md, "Training").
"""

EXPORT_HELP = """\
Export a training run as a new SavedModel version: rebuilds the model from
RUN_DIR/model.json, restores the newest good checkpoint and writes OUT/VERSION.
"""


def register(subparsers):
    train = subparsers.add_parser("train", help="train a model from a YAML config", description=TRAIN_HELP)
    train.add_argument("config", metavar="CONFIG", help="training config (YAML)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the newest good checkpoint of the run (a damaged newest one "
                            "falls back to the one before); starts fresh if there is none")
    train.add_argument("--run-dir", metavar="DIR", help="run directory (overrides run_dir in the config)")
    train.add_argument("--epochs", type=int, metavar="N", help="total epochs (overrides training.epochs)")
    train.add_argument("--no-export", action="store_true", help="skip the SavedModel export after training")
    train.add_argument("--add-version", action="store_true",
                       help="export even if export.base_path already holds versions (a server watching it switches "
                            "to the new one); without it such a run is refused before training")
    train.add_argument("--workers", type=int, metavar="N",
                       help="start a local cluster of N worker processes on loopback ports, each with its own "
                            "TF_CONFIG (the config's strategy must be multi_worker); one failed worker or Ctrl-C "
                            "stops all")
    init_from.add_arguments(train)
    train.set_defaults(func=run_train, parser=train)

    export = subparsers.add_parser("export", help="export a training run as a SavedModel version",
                                   description=EXPORT_HELP)
    export.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `tfgen train`")
    export.add_argument("--out", required=True, metavar="saved_models/NAME",
                        help="model base path; the version is a numbered subdirectory")
    export.add_argument("--version", type=int, metavar="N", help="version number (default: newest + 1)")
    export.add_argument("--log-prob-samples", type=int, metavar="K",
                        help="posterior (VAE) or dequantization (flows, pPCA on discrete data) draws per row of "
                             "the exported log_prob, 1 .. 4096 (default: the run's config; K passes per row)")
    export.set_defaults(func=run_export)


def _forwarded_args(args):
    """The `tfgen train` arguments of `args` again, without --workers (for each worker)."""
    argv = [args.config]
    for action in args.parser._actions:
        if not action.option_strings or action.dest in ("help", "workers"):
            continue
        value = getattr(args, action.dest, None)
        if value is None or value is False:
            continue
        argv += [action.option_strings[0]] + ([] if value is True else [str(value)])
    return argv


def run_local_cluster(args):
    from tfgen.training.cluster import LocalCluster
    from tfgen.training.config import load_config

    if args.workers < 1:
        raise UserError("--workers must be >= 1")
    config = load_config(args.config)
    if config.strategy.name != "multi_worker":
        raise UserError(f"--workers: {args.config} has strategy.name {config.strategy.name!r}; "
                        "set strategy: {name: multi_worker} (the config then runs unchanged on a real cluster)")
    print(f"tfgen train: starting {args.workers} local workers", flush=True)
    return LocalCluster(_forwarded_args(args), args.workers,
                        grace_seconds=config.faults.preemption_grace_seconds + 30).run()


def run_train(args):
    from tfgen.training.config import check_config_file, load_config, override

    # A missing or malformed file is answered before TensorFlow loads (seconds).
    check_config_file(args.config)
    if getattr(args, "workers", None) is not None:
        return run_local_cluster(args)
    from tfgen.training.faults import TrainingInterrupted
    from tfgen.training.trainer import TrainingDiverged, train

    config = override(load_config(args.config), run_dir=args.run_dir, epochs=args.epochs,
                      export=False if args.no_export else None, add_version=True if args.add_version else None)
    init_from.apply_arguments(config, args)
    try:
        result = train(config, resume=args.resume)
    except TrainingDiverged as e:
        print(f"tfgen train: diverged: {e}", file=sys.stderr)
        return 1
    except TrainingInterrupted as e:
        print(f"tfgen train: {e}", file=sys.stderr)
        return e.exit_code
    summary = describe_figures(result.metrics.get("held_out") or {})
    if result.metrics.get("held_out_split"):
        summary = f"{result.metrics['held_out_split']} {summary}"
    print(f"tfgen train: {result.status} after {result.epochs_completed} epochs; held-out {summary}; "
          f"run dir {result.run_dir}" + (f"; exported {result.export_dir}" if result.export_dir else ""))
    fine_tune = result.metrics.get("fine_tune")
    if fine_tune and not fine_tune["acceptable"] and not fine_tune["publish"] and not fine_tune["dry_run"]:
        return 1  # a fine-tuned version worse than its parent, not published
    return 0


def describe_figures(figures):
    """Held-out figures in one line: bits/dim with its standard error first, if any."""
    if not figures:
        return "n/a"
    parts = []
    if "bits_per_dim" in figures:
        stderr = figures.get("bits_per_dim_stderr")
        parts.append(f"bits/dim {figures['bits_per_dim']:.4f}" + (f" (+- {stderr:.4f})" if stderr is not None else ""))
    shown = {"bits_per_dim", "bits_per_dim_stderr", "num_examples", "num_noise_samples"}
    parts += [f"{name} {value:.4f}" for name, value in sorted(figures.items())
              if name not in shown and isinstance(value, float)]
    return ", ".join(parts)


def run_export(args):
    from tfgen.training.config import run_directory_files

    if args.version is not None and args.version < 1:
        raise UserError("--version must be >= 1")
    run_directory_files(args.run_dir)
    from tfgen.training.trainer import export_run

    version_dir = export_run(args.run_dir, args.out, version=args.version, log_prob_samples=args.log_prob_samples)
    print(f"tfgen export: wrote {os.path.abspath(version_dir)}")
    return 0
