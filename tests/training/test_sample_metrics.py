"""Sample-quality figures in TensorBoard during training (tensorboard.metrics_every)."""

import os

import pytest
from training_fixtures import make_config

from tfgen.data.builtin import eight_gaussians_modes
from tfgen.data.datasets import load_dataset
from tfgen.metrics import sample_quality
from tfgen.training import summaries
from tfgen.training.config import parse_config
from tfgen.training.trainer import train

DATA = {"name": "eight_gaussians", "num_samples": 1000, "seed": 0}


def test_figures_every_n_epochs_equal_the_metrics_of_the_model_s_samples(tmp_path):
    config = parse_config(make_config(tmp_path, data=DATA, training={"epochs": 2, "steps_per_epoch": 2},
                                      tensorboard={"sample_every": 0, "metrics_every": 2, "metrics_num_samples": 60}))
    result = train(config)
    tags = summaries.read_event_tags(os.path.join(config.run_dir, "logs", "sample_quality"))
    assert {"sample_quality/frechet_distance", "sample_quality/kid", "sample_quality/kid_stderr",
            "sample_quality/precision", "sample_quality/recall", "sample_quality/modes_covered",
            "sample_quality/fraction_near_mode"} == set(tags)
    assert [step for step, _ in tags["sample_quality/frechet_distance"]] == [2]  # every 2nd epoch only
    # The same figures from the trained model's samples for seeds 0 .. 59, independently.
    import tensorflow as tf

    from tfgen.training.callbacks import CheckpointStore
    from tfgen.training.trainer import build_model, read_json

    spec_model = read_json(os.path.join(config.run_dir, "model.json"))
    model = build_model(spec_model["class_name"], spec_model["config"])
    CheckpointStore(config.checkpoint_dir, model).restore_latest_good(log=lambda m: None)
    samples = model.sample(tf.range(60, dtype=tf.int64)).numpy()
    validation = load_dataset(DATA).splits["validation"].x
    expected = sample_quality.frechet_distance(validation, samples)["frechet_distance"]
    assert float(tags["sample_quality/frechet_distance"][0][1]) == pytest.approx(expected, rel=1e-4)
    coverage = sample_quality.mode_coverage(samples, *eight_gaussians_modes())
    assert float(tags["sample_quality/modes_covered"][0][1]) == coverage["modes_covered"]
    assert result.status == "completed"


def test_off_by_default_and_a_bad_network_fails_before_the_run_directory(tmp_path):
    config = parse_config(make_config(tmp_path, data=DATA, training={"epochs": 1}))
    assert config.tensorboard.metrics_every == 0
    bad = parse_config(make_config(tmp_path, data=DATA, tensorboard={"metrics_every": 1,
                                                                     "metrics_feature_network": "digits_classifier"}))
    with pytest.raises(ValueError, match=r"takes \[8, 8, 1\] images"):
        train(bad)
    assert not os.path.exists(bad.run_dir)
    with pytest.raises(ValueError, match="metrics_num_samples' must be >= 2"):
        parse_config(make_config(tmp_path, tensorboard={"metrics_every": 1, "metrics_num_samples": 1}))
