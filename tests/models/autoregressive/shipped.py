"""The shipped autoregressive exports, rebuilt as tfgen models holding their exported
weights (tools/reexport_shipped.py's `restore`), so tests can run the trained network's
naive sampler and gradients."""

import os
import sys

from tfgen.export.reader import resolve_version

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))

from reexport_shipped import restore  # noqa: E402


def newest(name):
    return resolve_version(os.path.join(ROOT, "saved_models", name))


def rebuilt(version_dir):
    return restore(version_dir)[0]
