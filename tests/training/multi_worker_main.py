"""`tfgen train` in one worker process of the multi-worker test.

Runs the real training CLI (`tfgen.training.cli`) after registering the test flow.
Usage: python multi_worker_main.py CONFIG [train options]; TF_CONFIG names the worker.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import training_fixtures  # noqa: E402,F401  (registers DiagonalAffineFlow)
from tfgen.training import cli  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", *sys.argv[1:]])
    sys.exit(args.func(args))
