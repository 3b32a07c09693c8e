"""End-to-end training runs on a tiny real flow: run dir, resume, damaged checkpoints,
the NaN guard and the CLI."""

import glob
import json
import os

import numpy as np
import pytest
import yaml

from tfgen import cli
from tfgen.backend import tf
from tfgen.training import callbacks, summaries
from tfgen.training.config import parse_config
from tfgen.training.trainer import TrainingDiverged, build_model, example_inputs, train
from training_fixtures import FLOW, make_config


def checkpoints(run_dir):
    return sorted(os.path.basename(p)[: -len(".index")] for p in glob.glob(os.path.join(run_dir, "checkpoints", "ckpt-*.index")))


def history_rows(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        return [line.split(",")[0] for line in f.read().splitlines()[1:]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-epoch run (shared by the read-only checks below)."""
    tmp_path = tmp_path_factory.mktemp("trained")
    config = parse_config(make_config(tmp_path, training={"evaluate_initial": True}))
    return config, train(config)


def test_two_epoch_run_writes_the_run_dir(trained):
    config, result = trained
    run_dir = config.run_dir
    assert result.status == "completed" and result.epochs_completed == 2 and result.initial_epoch == 0
    assert checkpoints(run_dir) == ["ckpt-1", "ckpt-2"]
    assert parse_config(yaml.safe_load(open(os.path.join(run_dir, "config.yaml")))) == config
    model_json = json.load(open(os.path.join(run_dir, "model.json")))
    assert model_json["class_name"] == FLOW
    assert model_json["config"]["data_spec"]["event_shape"] == [2]
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["status"] == "completed" and metrics["held_out_split"] == "test"
    assert metrics["held_out"]["log_prob"] > metrics["initial_held_out"]["log_prob"]
    assert len(metrics["history"]["loss"]) == 2 and "val_loss" in metrics["history"]
    assert history_rows(run_dir) == ["0", "1"]
    assert not glob.glob(os.path.join(run_dir, "*.tmp-*"))


def test_tensorboard_scalars_and_sample_plots(trained):
    config, _ = trained
    train_tags = summaries.read_event_tags(os.path.join(config.run_dir, "logs", "train"))
    assert [step for step, _ in train_tags["epoch_loss"]] == [1, 2]
    assert "epoch_learning_rate" in train_tags and "epoch_bits_per_dim" in train_tags
    assert "epoch_loss" in summaries.read_event_tags(os.path.join(config.run_dir, "logs", "validation"))
    samples = summaries.read_event_tags(os.path.join(config.run_dir, "logs", "samples"))["samples"]
    assert [step for step, _ in samples] == [1, 2]
    width, height, png = samples[0][1]
    assert int(width) > 0 and int(height) > 0 and png.startswith(b"\x89PNG")


def test_restarting_without_resume_refuses_to_touch_the_run(trained):
    config, _ = trained
    before = sorted(os.listdir(os.path.join(config.run_dir, "checkpoints")))
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(config)
    assert sorted(os.listdir(os.path.join(config.run_dir, "checkpoints"))) == before


def checkpoint_values(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_dtype_map() if "save_counter" not in name}


def test_resume_continues_from_the_last_epoch_exactly_as_an_uninterrupted_run(tmp_path, trained):
    whole_config, whole = trained  # the same config, trained 2 epochs without a break
    config = parse_config(make_config(tmp_path, training={"evaluate_initial": True, "epochs": 1}))
    first = train(config)
    steps = first.metrics["steps_per_epoch"]
    config.training.epochs = 2
    result = train(config, resume=True)
    assert result.initial_epoch == 1 and result.epochs_completed == 2
    assert len(result.metrics["history"]["loss"]) == 1
    assert history_rows(config.run_dir) == ["0", "1"]
    assert checkpoints(config.run_dir) == ["ckpt-1", "ckpt-2"]
    # The optimizer state came back too: its step counter continued, not restarted.
    resumed = checkpoint_values(os.path.join(config.run_dir, "checkpoints", "ckpt-2"))
    assert resumed["model/optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == 2 * steps
    # Bit for bit the run that was never interrupted: the same batches, the same updates.
    uninterrupted = checkpoint_values(os.path.join(whole_config.run_dir, "checkpoints", "ckpt-2"))
    assert sorted(resumed) == sorted(uninterrupted)
    for name, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    for name, values in result.metrics["history"].items():
        np.testing.assert_array_equal(values, whole.metrics["history"][name][1:], err_msg=name)
    assert result.metrics["held_out"] == whole.metrics["held_out"]


def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    config = parse_config(make_config(tmp_path, tensorboard={"enabled": False}))
    train(config)
    data_file = glob.glob(os.path.join(config.run_dir, "checkpoints", "ckpt-2.data-*"))[0]
    size = os.path.getsize(data_file)
    with open(data_file, "r+b") as f:  # what a kill mid-copy leaves behind
        f.truncate(size // 2)
    assert callbacks.checkpoint_problem(data_file.split(".data-")[0]) is not None
    config.training.epochs = 3
    result = train(config, resume=True)
    assert result.initial_epoch == 1 and result.epochs_completed == 3
    assert history_rows(config.run_dir) == ["0", "1", "2"]  # epoch index 1 redone, not repeated
    assert checkpoints(config.run_dir) == ["ckpt-1", "ckpt-2", "ckpt-3"]
    for name in checkpoints(config.run_dir):  # ckpt-2 was rewritten whole
        assert callbacks.checkpoint_problem(os.path.join(config.run_dir, "checkpoints", name)) is None
    assert glob.glob(os.path.join(config.run_dir, "checkpoints", "ckpt-2.*.damaged"))


def test_corrupted_bytes_fail_the_checksum(trained, tmp_path):
    config, _ = trained
    import shutil

    copy = tmp_path / "ckpts"
    shutil.copytree(os.path.join(config.run_dir, "checkpoints"), copy)
    data_file = glob.glob(str(copy / "ckpt-2.data-*"))[0]
    raw = bytearray(open(data_file, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(data_file, "wb").write(bytes(raw))
    assert callbacks.checkpoint_problem(str(copy / "ckpt-2")) is not None
    assert callbacks.checkpoint_problem(str(copy / "ckpt-1")) is None


def test_nan_guard_stops_before_a_non_finite_checkpoint(tmp_path):
    config = parse_config(make_config(tmp_path, training={"epochs": 1}, tensorboard={"enabled": False}))
    train(config)
    # Resume with a learning rate that overflows the weights in the first step.
    config.training.epochs = 3
    config.training.learning_rate = 1e30
    with pytest.raises(TrainingDiverged, match="non-finite loss .* epoch 2.*newest checkpoint is from epoch 1"):
        train(config, resume=True)
    assert checkpoints(config.run_dir) == ["ckpt-1"]
    metrics = json.load(open(os.path.join(config.run_dir, "metrics.json")))
    assert metrics["status"] == "diverged"


def test_checkpoint_store_refuses_non_finite_weights(trained, tmp_path):
    config, _ = trained
    model = build_model(FLOW, json.load(open(os.path.join(config.run_dir, "model.json")))["config"])
    model.compile(optimizer="adam")
    store = callbacks.CheckpointStore(str(tmp_path / "ck"), model)
    assert store.save(1)
    model.shift.assign(np.full(model.shift.shape, np.nan, np.float32))
    assert store.save(2) is None
    assert [callbacks.checkpoint_epoch(p) for p in store.candidates()] == [1]


@pytest.fixture
def tfgen_main(monkeypatch):
    """`tfgen.cli.main` with only the training commands registered (the others' areas
    are tested on their own)."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["tfgen.training.cli"])
    return cli.main


def test_cli_config_error_is_one_line_and_writes_nothing(tmp_path, capsys, tfgen_main):
    data = make_config(tmp_path)
    data["training"]["lerning_rate"] = 0.1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert tfgen_main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown key 'training.lerning_rate'" in err and len(err.splitlines()) == 1
    assert not os.path.exists(data["run_dir"])


def test_cli_bad_dataset_option_writes_nothing(tmp_path, capsys, tfgen_main):
    data = make_config(tmp_path, data={"nosie": 0.1})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert tfgen_main(["train", str(path)]) == 2
    assert "unknown option 'nosie'" in capsys.readouterr().err
    assert not os.path.exists(data["run_dir"])


def test_cli_export_needs_a_run_dir(tmp_path, capsys, tfgen_main):
    assert tfgen_main(["export", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "model.json not found" in capsys.readouterr().err


def exporting_config(tmp_path):
    """(base path, config dict, config file) of a one-epoch run exporting to saved_models/moons."""
    base = tmp_path / "saved_models" / "moons"
    data = make_config(tmp_path, training={"epochs": 1}, tensorboard={"enabled": False},
                       export={"enabled": True, "base_path": str(base)})
    path = tmp_path / "moons.yaml"
    path.write_text(yaml.safe_dump(data))
    return base, data, path


def test_cli_train_exports_and_export_rebuilds_the_same_model(tmp_path, capsys, tfgen_main):
    base, data, path = exporting_config(tmp_path)
    assert tfgen_main(["train", str(path)]) == 0
    assert "completed after 1 epochs" in capsys.readouterr().out
    assert tfgen_main(["export", data["run_dir"], "--out", str(base), "--version", "5"]) == 0
    assert sorted(os.listdir(base)) == ["1", "5"]
    meta = json.load(open(base / "1" / "assets.extra" / "tfgen.json"))
    assert meta["training_data"]["data"]["name"] == "two_moons" and meta["metrics"]["split"] == "test"
    x = tf.constant([[0.0, 0.5], [1.0, -0.5]])
    log_probs = [tf.saved_model.load(str(base / v)).signatures["log_prob"](x=x)["log_prob"].numpy() for v in ("1", "5")]
    np.testing.assert_allclose(log_probs[0], log_probs[1], rtol=1e-6)
    untrained = build_model(FLOW, json.load(open(os.path.join(data["run_dir"], "model.json")))["config"])
    assert not np.allclose(untrained.log_prob(x).numpy(), log_probs[0])  # trained weights, not the init


def test_mirrored_strategy_trains_and_exports_an_unreplicated_copy(tmp_path):
    base = tmp_path / "saved"
    config = parse_config(make_config(
        tmp_path, strategy={"name": "mirrored"}, training={"epochs": 1}, tensorboard={"enabled": False},
        export={"enabled": True, "base_path": str(base)},
    ))
    result = train(config)
    assert result.metrics["num_replicas"] == 1 and result.export_dir == str(base / "1")
    assert os.path.isfile(base / "1" / "saved_model.pb")


def test_early_stopping_on_validation_loss_still_checkpoints_the_last_epoch(tmp_path):
    config = parse_config(make_config(
        tmp_path, training={"epochs": 6, "early_stopping_patience": 1, "early_stopping_min_delta": 100.0},
        tensorboard={"enabled": False}, checkpoint={"every": 4},
    ))
    result = train(config)
    # Epoch 1 sets the best val loss; no later epoch beats it by 100 nats.
    assert result.status == "early_stopped" and result.epochs_completed == 2
    assert checkpoints(config.run_dir) == ["ckpt-2"]
    assert result.metrics["best_epoch"] == 1


def test_after_early_stopping_the_run_exports_the_best_weights_it_evaluated(tmp_path):
    from tfgen.training.trainer import export_run

    base = tmp_path / "saved"
    config = parse_config(make_config(
        tmp_path, training={"epochs": 6, "early_stopping_patience": 1, "early_stopping_min_delta": 100.0},
        tensorboard={"enabled": False}, export={"enabled": True, "base_path": str(base)},
    ))
    result = train(config)  # exports the in-memory model: EarlyStopping's best weights
    assert result.status == "early_stopped"
    rebuilt = export_run(config.run_dir, str(base))  # from the newest checkpoint
    x = tf.constant([[0.0, 0.5], [1.0, -0.5]])
    log_probs = [tf.saved_model.load(d).signatures["log_prob"](x=x)["log_prob"].numpy() for d in (result.export_dir, rebuilt)]
    np.testing.assert_allclose(log_probs[0], log_probs[1], rtol=1e-6)


def test_sample_summaries_write_an_image_grid(tmp_path):
    from toy_models import DiagonalAffineFlow

    from tfgen.data.spec import DataSpec

    spec = DataSpec(event_shape=(4, 4, 1), kind="image", levels=17, num_classes=3)
    model = DiagonalAffineFlow(spec)
    model(example_inputs(spec), training=False)
    callback = callbacks.SampleSummaries(str(tmp_path), spec, every=2, num_samples=9)
    callback.set_model(model)
    for epoch in range(4):
        callback.on_epoch_end(epoch)
    images = summaries.read_event_tags(str(tmp_path / "samples"))["samples"]
    assert [step for step, _ in images] == [2, 4]
    decoded = tf.io.decode_png(images[0][1][2]).numpy()
    assert decoded.shape[0] >= 12 and decoded.shape[2] == 1  # a 3x3 grid of 4x4 digits


def test_training_never_adds_a_version_to_a_served_base_path_unasked(tmp_path, capsys, tfgen_main):
    base, data, path = exporting_config(tmp_path)
    assert tfgen_main(["train", str(path)]) == 0  # an empty base path: version 1
    capsys.readouterr()
    second = dict(data, run_dir=str(tmp_path / "second"))
    path.write_text(yaml.safe_dump(second))
    assert tfgen_main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds version(s) [1]" in err and "--add-version" in err and len(err.splitlines()) == 1
    assert not os.path.exists(second["run_dir"]) and sorted(os.listdir(base)) == ["1"]
    assert tfgen_main(["train", str(path), "--add-version"]) == 0
    assert sorted(os.listdir(base)) == ["1", "2"]
