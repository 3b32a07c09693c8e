"""Exports shared by the export tests: each zoo flow is built and exported once per session.

The default run covers a representative pair (one unconditional vector flow, one
conditional image flow); every other zoo flow runs under `-m slow`.
"""

import pytest

import zoo
from tfgen.backend import tf
from tfgen.export.conformance import check_export
from tfgen.export.saved_model import export_model

DEFAULT_FLOWS = ("real_nvp_vector", "real_nvp_image_conditional")
METADATA = {"training_data": {"dataset": "zoo"}, "metrics": {"test_bits_per_dim": 1.5}}


def flow_params():
    """Every zoo flow; those outside DEFAULT_FLOWS are marked slow."""
    return [pytest.param(name, marks=() if name in DEFAULT_FLOWS else pytest.mark.slow)
            for name in sorted(zoo.TINY_FLOWS)]


class Exports:
    """Lazily exported zoo flows: `model(name)`, `path(name)`, `loaded(name)`, `report(name)`."""

    def __init__(self, root):
        self._root = root
        self._cache = {}

    def _get(self, kind, name, make):
        if (kind, name) not in self._cache:
            self._cache[kind, name] = make()
        return self._cache[kind, name]

    def model(self, name):
        return self._get("model", name, lambda: zoo.build(name))

    def path(self, name):
        return self._get("path", name, lambda: export_model(
            self.model(name), str(self._root / name), metadata=METADATA))

    def loaded(self, name):
        return self._get("loaded", name, lambda: tf.saved_model.load(self.path(name)))

    def report(self, name):
        return self._get("report", name, lambda: check_export(self.path(name)))
