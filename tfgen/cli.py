"""`tfgen` command line: thin wiring, no logic.

Each area registers its own subcommands (`register(subparsers)` in its `cli` module) and
imports TensorFlow only when a command runs, so `tfgen --help` answers at once.
"""

import argparse
import importlib
import logging
import os
import re
import sys
import threading

from tfgen import __version__
from tfgen.errors import UserError

# Before any command imports TensorFlow: keep its C++ start-up chatter out of the output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# What TensorFlow's C++ side writes to stderr whatever TF_CPP_MIN_LOG_LEVEL says (absl's
# pre-init notice, oneDNN/CUDA/CPU-feature lines, a failed cuInit on CPU-only machines).
TF_NATIVE_LINE = re.compile(
    r"^(?:[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: )"
)


def drop_native_lines(chunk):
    """What of one read of the native stderr pipe reaches the user: `chunk` (bytes of
    whole lines) without TensorFlow's log messages. A message may span lines (a
    collective's UNAVAILABLE error names the lost task on the next ones); C++ writes each
    message in one write, so the lines after a native line in the same read are its
    continuation and go with it."""
    kept, dropping = [], False
    for line in chunk.splitlines(keepends=True):
        if TF_NATIVE_LINE.match(line.decode("utf-8", "replace")):
            dropping = True
        elif not dropping:
            kept.append(line)
    return b"".join(kept)


def filter_native_stderr():
    """Route file descriptor 2 through a filter dropping TensorFlow's start-up lines.

    Python's own `sys.stderr` (tfgen's errors, logging, tracebacks) keeps writing to the
    original stream directly, so nothing tfgen says is delayed or lost; only what C++
    writes to fd 2 passes the filter. TFGEN_TF_LOGS=1 turns the filter off.
    """
    if os.environ.get("TFGEN_TF_LOGS") == "1":
        return
    try:
        original = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return
    sys.stderr.flush()
    sys.stderr = os.fdopen(os.dup(original), "w", buffering=1, encoding=sys.stderr.encoding,
                           errors="backslashreplace")
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        partial = b""  # a line cut by the end of a read, completed by the next
        while chunk := os.read(read_end, 1 << 16):
            whole, newline, partial = (partial + chunk).rpartition(b"\n")
            if newline and (text := drop_native_lines(whole + newline)):
                os.write(original, text)
        if partial:
            os.write(original, drop_native_lines(partial))

    threading.Thread(target=forward, name="tf-stderr-filter", daemon=True).start()

class _QuietSavedModelLoad(logging.Filter):
    """Drops the absl warning `tf.saved_model.load` gives for functions whose custom
    gradients were not saved (the probability-flow ODE, group norm): tfgen's commands
    call exports, they never differentiate them."""

    def filter(self, record):
        return "with ops with unsaved custom gradients" not in record.getMessage()


# Modules that register subcommands, in the order `--help` lists them.
COMMAND_MODULES = [
    "tfgen.training.cli",  # train, export (from a training run)
    "tfgen.export.cli",  # sample (local), check
    "tfgen.serving.cli",  # serve
    "tfgen.scoring.cli",  # score
    "tfgen.scoring.classify",  # classify
    "tfgen.metrics.ood_cli",  # ood fit, ood apply
    "tfgen.publish.cli",  # publish (list, rollback, restore)
    "tfgen.latent.cli",  # interpolate, attribute, reconstruct
    "tfgen.evaluation.cli",  # evaluate, train-classifier
]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfgen",
        description=(
            "Train, export and serve deep generative models in TensorFlow. "
            "Run `tfgen COMMAND --help` for each command's options."
        ),
    )
    parser.add_argument("--version", action="version", version=f"tfgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv=None):
    """Run a command; `argv` None means the process's own command line (the `tfgen`
    script, `python -m tfgen`), which alone gets the stderr filter."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if argv is None:
        filter_native_stderr()
        logging.getLogger("absl").addFilter(_QuietSavedModelLoad())
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
