"""`check_export` catches a broken export (tests/models/test_contract.py passes one model
of every class through it)."""

import json
import os


from tfgen.backend import tf
from tfgen.export.conformance import check_export
from tfgen.export.standalone import METADATA


class _PythonSampler(tf.Module):
    """Breaks the contract: a py_function, an auto-style output name, an unknown shape."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])
    def sample(self, seed):
        return {"output_0": tf.py_function(lambda s: tf.cast(s, tf.float32) * 2.0, [seed], tf.float32)}


def test_export_of_an_older_format_is_named_as_such(tmp_path):
    path = tmp_path / "1"
    (path / "assets.extra").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"")
    (path / METADATA).write_text(json.dumps({"data_spec": {"event_shape": [2], "kind": "vector"}}))
    report = check_export(str(path))
    assert not report.ok and "tfgen.json has no 'log_prob_kind'" in report.table()


def test_broken_export_fails(tmp_path):
    path = str(tmp_path / "1")
    module = _PythonSampler()
    tf.saved_model.save(module, path, signatures={"sample": module.sample, "serving_default": module.sample})
    os.makedirs(os.path.join(path, "assets.extra"))
    io = {"inputs": ["seed"], "outputs": ["output_0"]}
    with open(os.path.join(path, METADATA), "w") as f:
        json.dump({"data_spec": {"event_shape": [2], "kind": "vector", "num_classes": None},
                   "log_prob_kind": "none", "has_latent": False,
                   "signatures": {"sample": io, "serving_default": io}}, f)
    report = check_export(path)
    assert not report.ok
    failed = {(c.stage, c.name): c.detail for c in report.failures}
    assert {("static", "signature set"), ("static", "sample signature"), ("load", "core TF ops only"),
            ("load", "sample"), ("load", "describe"), ("session", "sample"),
            ("cli", "saved_model_cli run sample")} <= set(failed), report.table()
    assert "describe" in failed["static", "signature set"]  # the contract's, missing here
    assert "outputs ['output_0'], the contract says ['samples']" in failed["static", "sample signature"]
    assert "EagerPyFunc" in report.table()
    assert "FAILED" in report.table().splitlines()[-1]
