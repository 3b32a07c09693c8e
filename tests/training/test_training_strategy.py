"""Strategy resolution, TF_CONFIG checks and the optimizer/schedule built from a config."""

import json

import pytest

from tfgen.backend import tf
from tfgen.training import strategy as strategy_lib
from tfgen.training.config import ScheduleConfig, StrategyConfig, TrainingConfig
from tfgen.training.optimizers import build_optimizer, build_schedule


def test_default_and_mirrored():
    default = strategy_lib.resolve_strategy(StrategyConfig(name="default"))
    assert default is tf.distribute.get_strategy()
    assert strategy_lib.is_chief(default) and strategy_lib.num_workers(default) == 1
    mirrored = strategy_lib.resolve_strategy(StrategyConfig(name="mirrored", devices=["/cpu:0"]))
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == 1 and strategy_lib.is_chief(mirrored)


def two_workers(index=0):
    return {"cluster": {"worker": ["localhost:12345", "localhost:12346"]}, "task": {"type": "worker", "index": index}}


def test_tf_config_is_parsed():
    assert strategy_lib.read_tf_config({"TF_CONFIG": json.dumps(two_workers(1))})["task"]["index"] == 1


@pytest.mark.parametrize("raw, message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "TF_CONFIG is not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), "no 'cluster'"),
    (json.dumps({"cluster": {"worker": "localhost:1"}, "task": {"type": "worker", "index": 0}}),
     "must be a list of 'host:port'"),
    (json.dumps({"cluster": {"worker": ["localhost:1"]}}), "needs 'task'"),
    (json.dumps(two_workers(2)), "worker:2 is not a member"),
])
def test_malformed_tf_config_is_one_clear_error(raw, message):
    environ = {} if raw is None else {"TF_CONFIG": raw}
    with pytest.raises(ValueError, match=message):
        strategy_lib.read_tf_config(environ)


def test_multi_worker_without_tf_config_fails_before_creating_a_strategy(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="tf_configs/cluster/README.md"):
        strategy_lib.resolve_strategy(StrategyConfig(name="multi_worker"))


def test_shipped_cluster_examples_are_valid():
    import glob
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..", "tf_configs", "cluster")
    paths = sorted(glob.glob(os.path.join(root, "*.json")))
    assert len(paths) >= 2
    for path in paths:
        with open(path) as f:
            strategy_lib.read_tf_config({"TF_CONFIG": f.read()})


def test_warmup_then_cosine_schedule():
    training = TrainingConfig(learning_rate=1.0, schedule=ScheduleConfig(name="cosine", warmup_steps=10, alpha=0.1))
    lr = build_schedule(training, total_steps=110)
    values = [float(lr(step)) for step in (0, 4, 9, 10, 60, 110, 500)]
    assert values[0] == pytest.approx(0.1) and values[1] == pytest.approx(0.5) and values[2] == pytest.approx(1.0)
    assert values[3] == pytest.approx(1.0) and 0.1 < values[4] < 1.0
    assert values[5] == pytest.approx(0.1) and values[6] == pytest.approx(0.1)


def test_constant_schedule_and_optimizer_options():
    training = TrainingConfig(optimizer="adamw", learning_rate=0.01, weight_decay=0.1, clipnorm=2.0)
    assert build_schedule(training, total_steps=100) == 0.01
    opt = build_optimizer(training, total_steps=100)
    assert type(opt).__name__ == "AdamW" and opt.clipnorm == 2.0 and opt.weight_decay == pytest.approx(0.1)
    assert type(build_optimizer(TrainingConfig(optimizer="sgd", momentum=0.9), 10)).__name__ == "SGD"
