"""`tfgen` command line: thin wiring, no logic.

Each area registers its own subcommands (`register(subparsers)` in its `cli` module) and
imports TensorFlow only when a command runs, so `tfgen --help` answers at once.
"""

import argparse
import importlib
import os
import sys

from tfgen.errors import UserError

# Before any command imports TensorFlow: keep its C++ start-up chatter out of the output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Modules that register subcommands, in the order `--help` lists them.
COMMAND_MODULES = [
    "tfgen.training.cli",  # train, export (from a training run)
    "tfgen.export.cli",  # sample (local), check
    "tfgen.serving.cli",  # serve
    "tfgen.scoring.cli",  # score
    "tfgen.latent.cli",  # interpolate, attribute, reconstruct
]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfgen",
        description=(
            "Train, export and serve deep generative models in TensorFlow. "
            "Run `tfgen COMMAND --help` for each command's options."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except UserError as e:
        # Bad input is the user's to fix: one line naming the problem. Anything else is
        # a bug in tfgen and keeps its traceback.
        print(f"tfgen {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
