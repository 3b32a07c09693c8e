"""`tfgen train ...` in one worker process of the multi-worker test.

The real `tfgen` command line, after registering the test flow.
Usage: python multi_worker_main.py CONFIG [train options]; TF_CONFIG names the worker.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import training_fixtures  # noqa: E402,F401  (registers DiagonalAffineFlow)
from tfgen import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli.main(["train", *sys.argv[1:]]))
