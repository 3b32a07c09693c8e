"""`tfgen train --init-from`: a run that starts from an export, the publish gate, the
lineage it records, and the bad inputs refused before anything is written
(tfgen/training/init_from.py)."""

import hashlib
import json
import os
import shutil

import pytest
import yaml

from tfgen import cli
from tfgen.training.config import parse_config
from tfgen.training.trainer import train
from training_fixtures import make_config


def tree_digest(path):
    """sha256 over every file's relative path and bytes under `path`."""
    digest = hashlib.sha256()
    for directory, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            full = os.path.join(directory, name)
            digest.update(os.path.relpath(full, path).encode())
            digest.update(open(full, "rb").read())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A base path holding version 1 of a 2-epoch flow trained on two_moons."""
    root = tmp_path_factory.mktemp("parent")
    config = parse_config(make_config(root, tensorboard={"enabled": False},
                                      export={"enabled": True, "base_path": str(root / "models" / "moons")}))
    train(config)
    return root / "models" / "moons"


@pytest.fixture
def served(parent, tmp_path):
    """A copy of the parent's base path (the tests publish into it)."""
    base = tmp_path / "models" / "moons"
    shutil.copytree(parent, base)
    return base


def write_config(tmp_path, name="fine_tune", **sections):
    data = make_config(tmp_path, tensorboard={"enabled": False}, export={"enabled": True}, **sections)
    data["run_dir"] = str(tmp_path / name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path), data


def metadata(version_dir):
    with open(os.path.join(version_dir, "assets.extra", "tfgen.json")) as f:
        return json.load(f)


def test_fine_tuning_starts_from_the_export_and_publishes_the_next_version_with_lineage(served, tmp_path, capsys):
    path, data = write_config(tmp_path, training={"epochs": 1})
    before = tree_digest(served / "1")
    assert cli.main(["train", path, "--init-from", str(served), "--add-version", "--learning-rate", "0.02"]) == 0
    out = capsys.readouterr().out
    assert sorted(os.listdir(served)) == ["1", "2"] and tree_digest(served / "1") == before
    parent_metrics = metadata(served / "1")["metrics"]
    lineage = metadata(served / "2")["lineage"]
    # The parent's figures, measured on the restored model before any step, are those the
    # parent recorded at its export on the same split: the weights came back exactly.
    assert lineage["held_out"]["split"] == parent_metrics["split"] == "test"
    assert lineage["held_out"]["parent"]["bits_per_dim"] == parent_metrics["bits_per_dim"]
    assert lineage["held_out"]["new"]["bits_per_dim"] < parent_metrics["bits_per_dim"]
    assert lineage["parent"]["version"] == 1 and lineage["parent"]["base_path"] == str(served)
    assert lineage["data_fingerprint"].startswith("sha256:") and len(lineage["data_fingerprint"]) == 71
    assert "parent v1" in out and "fine-tuned" in out and "publishing" in out
    # The run's optimizer took the CLI's learning rate.
    assert yaml.safe_load(open(os.path.join(data["run_dir"], "config.yaml")))["training"]["learning_rate"] == 0.02


def test_a_worse_version_is_not_published_unless_forced(served, tmp_path, capsys):
    path, data = write_config(tmp_path, training={"epochs": 1, "learning_rate": 3.0})
    assert cli.main(["train", path, "--init-from", str(served / "1"), "--add-version"]) == 1
    out = capsys.readouterr().out
    assert "not published (pass --force" in out and sorted(os.listdir(served)) == ["1"]
    path, _ = write_config(tmp_path, "forced", training={"epochs": 1, "learning_rate": 3.0})
    assert cli.main(["train", path, "--init-from", str(served / "1"), "--add-version", "--force"]) == 0
    assert sorted(os.listdir(served)) == ["1", "2"] and metadata(served / "2")["lineage"]["forced"] is True


def test_a_dry_run_compares_and_publishes_nothing(served, tmp_path, capsys):
    path, data = write_config(tmp_path, training={"epochs": 1})
    assert cli.main(["train", path, "--init-from", str(served), "--dry-run"]) == 0  # no --add-version needed
    out = capsys.readouterr().out
    assert "dry run: nothing published" in out and "bits_per_dim" in out
    assert sorted(os.listdir(served)) == ["1"] and os.path.isdir(data["run_dir"])


BAD = {
    "not an export": (lambda base, tmp: str(tmp), {}, "not a tfgen export"),
    "a missing version": (lambda base, tmp: str(base / "7"), {}, "no version 7 under"),
    "another model class": (lambda base, tmp: str(base), {"model": {"class_name": "RealNVP", "config": {}}},
                            "the export is a DiagonalAffineFlow, the config's model a RealNVP"),
    "another model config": (lambda base, tmp: str(base),
                             {"model": {"class_name": "toy_models:DiagonalAffineFlow",
                                        "config": {"init_log_scale": 0.5}}},
                             "model.config.init_log_scale 0.5 (export: 1.5)"),
    "data of another shape and levels": (lambda base, tmp: str(base), {"data": {"name": "digits"}},
                                         "differs from the export's data spec: event_shape [8, 8, 1] (export: [2])"),
    "a part the model does not declare": (lambda base, tmp: str(base), {"fine_tune": {"freeze": ["decoder"]}},
                                          "cannot freeze 'decoder' of DiagonalAffineFlow"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_init_from_is_one_line_before_anything_is_written(served, tmp_path, capsys, case):
    init_from, sections, message = BAD[case]
    data = make_config(tmp_path, tensorboard={"enabled": False}, export={"enabled": True})
    data.update(sections)
    data["run_dir"] = str(tmp_path / "run")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    before = tree_digest(served)
    assert cli.main(["train", str(path), "--init-from", init_from(served, tmp_path), "--add-version"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(data["run_dir"]) and tree_digest(served) == before
