"""`check_export` passes every zoo flow's export and catches a broken one."""

import json
import os

import pytest
from export_fixtures import flow_params

from tfgen.backend import tf
from tfgen.export.conformance import check_export
from tfgen.export.standalone import METADATA


@pytest.mark.parametrize("name", flow_params())
def test_zoo_exports_conform(exports, name):
    report = exports.report(name)
    assert report.ok, report.table()
    checks = {(c.stage, c.name) for c in report.checks}
    for stage in ("load", "session"):
        for signature in ("sample", "log_prob", "encode", "decode", "serving_default", "sample (defaults)"):
            assert (stage, signature) in checks
    assert {("load", "core TF ops only"), ("load", "process imported only TF"),
            ("session", "warmup replay"), ("cli", "saved_model_cli run sample")} <= checks


class _PythonSampler(tf.Module):
    """Breaks the contract: a py_function, an auto-style output name, an unknown shape."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])
    def sample(self, seed):
        return {"output_0": tf.py_function(lambda s: tf.cast(s, tf.float32) * 2.0, [seed], tf.float32)}


def test_broken_export_fails(tmp_path):
    path = str(tmp_path / "1")
    module = _PythonSampler()
    tf.saved_model.save(module, path, signatures={"sample": module.sample, "serving_default": module.sample})
    os.makedirs(os.path.join(path, "assets.extra"))
    io = {"inputs": ["seed"], "outputs": ["output_0"]}
    with open(os.path.join(path, METADATA), "w") as f:
        json.dump({"data_spec": {"num_classes": None}, "signatures": {"sample": io, "serving_default": io}}, f)
    report = check_export(path)
    assert not report.ok
    failed = {(c.stage, c.name) for c in report.failures}
    assert {("static", "sample names and batching"), ("load", "core TF ops only"),
            ("load", "sample"), ("session", "sample"), ("cli", "saved_model_cli run sample")} <= failed, report.table()
    assert "EagerPyFunc" in report.table()
    assert "FAILED" in report.table().splitlines()[-1]
