"""Versioned, atomic writing of exports and their tfgen.json (tfgen.export.saved_model)."""

import json
import os

import pytest
import tiny_models

import tfgen
from tfgen.contract import FORMAT_VERSION
from tfgen.errors import MissingPath, PathExists, UserError
from tfgen.export import saved_model
from tfgen.export.reader import list_versions, read_metadata, resolve_version
from tfgen.export.saved_model import export_model
from tfgen.versions import version_dirs


@pytest.fixture(scope="module")
def model():
    return tiny_models.vector_flow()


def test_versions_count_up_from_the_largest(model, tmp_path):
    base = str(tmp_path / "m")
    assert export_model(model, base) == os.path.join(base, "1")
    assert export_model(model, base, version=7) == os.path.join(base, "7")
    assert export_model(model, base) == os.path.join(base, "8")
    assert list_versions(base) == [1, 7, 8]
    assert resolve_version(base) == os.path.join(base, "8")
    assert sorted(os.listdir(base)) == ["1", "7", "8"]  # no temporary directory left


def test_existing_version_is_refused_and_kept(model, tmp_path):
    base = str(tmp_path / "m")
    path = export_model(model, base, version=3)
    before = sorted(os.listdir(path))
    with pytest.raises(PathExists, match="never overwritten"):
        export_model(model, base, version=3)
    assert sorted(os.listdir(path)) == before
    assert sorted(os.listdir(base)) == ["3"]


@pytest.mark.parametrize("version", [0, -1, 1.5, "2", True])
def test_bad_version_is_refused(model, tmp_path, version):
    with pytest.raises(UserError, match="positive integer"):
        export_model(model, str(tmp_path / "m"), version=version)


def test_partial_version_is_never_visible(model, tmp_path, monkeypatch):
    """Mid-export the files live in a non-integer hidden sibling; a failure removes it."""
    base = str(tmp_path / "m")
    seen = {}

    def failing_warmup(model, path, rows):
        seen["versions"] = list_versions(base)
        seen["entries"] = os.listdir(base)
        raise RuntimeError("disk full")

    monkeypatch.setattr(saved_model, "write_warmup", failing_warmup)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(model, base)
    assert seen["versions"] == []
    assert len(seen["entries"]) == 1 and seen["entries"][0].startswith(".1.tmp-")
    assert os.listdir(base) == []


def test_unknown_metadata_key_is_refused(model, tmp_path):
    with pytest.raises(UserError, match="unknown metadata key"):
        export_model(model, str(tmp_path / "m"), metadata={"metrix": {}})
    assert list_versions(str(tmp_path / "m")) == []


def test_metadata_describes_the_model(tmp_path):
    model = tiny_models.image_flow()
    metadata = {"training_data": {"dataset": "digits"}, "metrics": {"test_bits_per_dim": 2.5}}
    doc = read_metadata(export_model(model, str(tmp_path / "m"), metadata=metadata))
    assert doc["family"] == "flow" and doc["class_name"] == "DiagonalAffineFlow"
    assert doc["config"] == json.loads(json.dumps(model.get_config()))
    assert doc["data_spec"] == model.data_spec.to_dict()
    assert doc["log_prob_kind"] == "dequantized_lower_bound" and doc["has_latent"] is True  # 17-level images
    assert doc["training_data"] == {"dataset": "digits"}
    assert doc["metrics"] == {"test_bits_per_dim": 2.5}
    assert doc["versions"]["tfgen"] == tfgen.__version__
    assert set(doc["versions"]) == {"tfgen", "tensorflow", "tensorflow_probability"}
    assert doc["signatures"]["sample"] == {
        "inputs": ["condition", "seed", "temperature"], "outputs": ["samples"]}  # no exact log_prob to add
    assert doc["signatures"]["serving_default"] == doc["signatures"]["sample"]
    assert doc["signatures"]["log_prob"] == {"inputs": ["condition", "x"], "outputs": ["bits_per_dim", "log_prob"]}
    assert doc["signatures"]["describe"]["inputs"] == ["rows"]
    assert doc["format_version"] == FORMAT_VERSION
    assert doc["latent_shape"] == [4, 4, 1] and doc["stochastic_encoder"] is False
    assert doc["created"].endswith("+00:00")


def test_a_version_still_being_copied_in_is_skipped_as_the_server_skips_it(tmp_path):
    """`tfgen sample --model DIR` reads the newest version `tfgen serve` serves."""
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"")
    (base / "2" / "variables").mkdir(parents=True)  # half copied: no saved_model.pb yet
    assert version_dirs(str(base)) == {1: str(base / "1")}  # the server's view
    assert list_versions(str(base)) == [1]
    assert resolve_version(str(base)) == str(base / "1")


def test_next_version_skips_a_version_still_being_copied_in(model, tmp_path):
    """Reader and server skip a half-copied `2`; the next export still must not take it."""
    base = tmp_path / "m"
    export_model(model, str(base))
    (base / "2" / "variables").mkdir(parents=True)  # half copied: no saved_model.pb yet
    assert export_model(model, str(base)) == str(base / "3")
    assert list_versions(str(base)) == [1, 3]


def test_resolve_version_errors(tmp_path):
    with pytest.raises(MissingPath, match="no model directory"):
        resolve_version(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingPath, match="no integer version"):
        resolve_version(str(tmp_path / "empty"))
