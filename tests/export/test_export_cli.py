"""`tfgen sample` and `tfgen check` (tfgen.export.cli), run through `tfgen.cli.main`."""

import os

import numpy as np
import pytest
import tiny_models
from PIL import Image

from tfgen.cli import main
from tfgen.export import conformance
from tfgen.export.conformance import Check, Report
from tfgen.export.reader import call_signature
from tfgen.export.saved_model import export_model


def test_sample_writes_an_image_grid(exports, tmp_path):
    base = os.path.dirname(exports.path("real_nvp_image_conditional"))
    out = tmp_path / "grid.png"
    assert main(["sample", "--model", base, "-n", "6", "--out", str(out), "--temperature", "0.7",
                 "--seed", "3", "--condition", "2"]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and min(image.size) >= 64


def test_sample_writes_a_scatter_for_2d_data(tmp_path):
    base = str(tmp_path / "toy")
    export_model(tiny_models.vector_flow(), base)
    out = tmp_path / "scatter.png"
    assert main(["sample", "--model", base, "-n", "50", "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG"


def test_sample_npy_holds_the_signature_output(exports, tmp_path):
    path = exports.path("real_nvp_vector")
    out = tmp_path / "samples.npy"
    assert main(["sample", "--model", path, "-n", "5", "--seed", "9", "--out", str(out)]) == 0
    seeds = np.arange(9, 14, dtype=np.int64)
    expected = call_signature(path, "sample", {"seed": seeds, "temperature": np.ones(5, np.float32)})
    np.testing.assert_array_equal(np.load(out), expected["samples"])


@pytest.mark.parametrize("args, message", [
    (["--model", "{missing}"], "no model directory"),
    (["--model", "{empty}"], "no integer version directory"),
    (["--model", "{image}", "-n", "0"], "(-n) must be >= 1"),
    (["--model", "{image}", "--condition", "3"], "condition must be in 0 .. 2"),
    (["--model", "{vector}", "--condition", "1"], "unconditional"),
])
def test_sample_bad_input_is_one_line(exports, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": str(tmp_path / "missing"), "empty": str(tmp_path / "empty"),
             "image": exports.path("real_nvp_image_conditional"), "vector": exports.path("real_nvp_vector")}
    args = [a.format(**paths) for a in args]
    assert main(["sample", *args, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("tfgen sample: error:")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("ok, code", [(True, 0), (False, 1)])
def test_check_prints_the_table_and_exits_nonzero_on_failure(tmp_path, monkeypatch, capsys, ok, code):
    checks = (Check("static", "signature set", True, "['sample']"), Check("load", "sample", ok, "detail"))
    monkeypatch.setattr(conformance, "check_export", lambda path: Report(path, checks))
    version = tmp_path / "m" / "4"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    assert main(["check", str(tmp_path / "m")]) == code
    out = capsys.readouterr().out
    assert str(version) in out and "load: sample" in out
    assert out.strip().splitlines()[-1].startswith("PASSED" if ok else "FAILED")
