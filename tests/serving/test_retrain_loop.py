"""The serve-score-retrain-publish loop of the README, end to end with a real `tfgen
serve`: a served model scores new data (`tfgen score --server`), is fine-tuned on it
(`tfgen train --init-from`), the next version is published and swapped in under load
with no failed request and scores the new data better; `tfgen publish --rollback` swaps
the old one back, again under load."""

import csv
import threading
import time

import grpc
import numpy as np
import yaml

from test_process import ServeProcess
from tfgen import cli
from tfgen.data.datasets import load_dataset
from tfgen.serving import Client
from tfgen.training.config import parse_config
from tfgen.training.trainer import train


def config(tmp_path, run, data, **export):
    """A 2-epoch run of the tiny toy flow exporting to `export['base_path']` (if given)."""
    return {"model": {"class_name": "toy_models:DiagonalAffineFlow", "config": {"init_log_scale": 1.5}},
            "data": data, "run_dir": str(tmp_path / run), "tensorboard": {"enabled": False},
            "training": {"batch_size": 64, "epochs": 2, "learning_rate": 0.05, "verbose": 0, "eval_noise_draws": 1},
            "export": {"enabled": True, **export}}


def mean_log_prob(path):
    with open(path) as f:
        return float(np.mean([float(row["log_prob"]) for row in csv.DictReader(f)]))


def version_states(client, name):
    """The model's version states; none while the server has seen no version yet (it
    answers NOT_FOUND then, as TF Serving does)."""
    try:
        return [s["state"] for s in client.status(name)]
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return []


def wait_for(condition, timeout=120):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


class Load:
    """Client threads sending log_prob requests until stopped, counting failures."""

    def __init__(self, address, model, threads=4):
        self.stop, self.versions, self.failures = threading.Event(), [], []
        x = np.array([[0.0, 0.5], [1.0, -0.5]], np.float32)

        def run():
            with Client(address) as client:
                while not self.stop.is_set():
                    try:
                        response = client.predict_response(model, {"x": x}, "log_prob")
                        self.versions.append(response.model_spec.version.value)
                    except grpc.RpcError as e:
                        self.failures.append((e.code(), e.details()))

        self.threads = [threading.Thread(target=run) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def switched_to(self, version, then=20):
        """Waits until answers come from `version`, then for `then` more answers."""
        wait_for(lambda: self.versions and self.versions[-1] == version)
        n = len(self.versions)
        wait_for(lambda: len(self.versions) > n + then)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def test_serve_score_retrain_publish_and_roll_back_under_load(tmp_path, capsys):
    base = tmp_path / "models" / "moons"
    base.mkdir(parents=True)
    # The server starts on the empty base path while version 1 trains.
    box = {}
    starting = threading.Thread(target=lambda: box.setdefault("server", ServeProcess(
        ["--model_name", "moons", "--model_base_path", str(base), "--file_system_poll_wait_seconds", "0.2"],
        cwd=str(tmp_path), log_path=str(tmp_path / "serve.log"))))
    starting.start()
    train(parse_config(config(tmp_path, "v1", {"name": "two_moons", "num_samples": 800}, base_path=str(base))))
    # New data: another distribution than the served model's.
    new = load_dataset({"name": "circles", "num_samples": 800, "seed": 1})
    np.save(tmp_path / "new.npy", np.concatenate([s.x for s in new.splits.values()]))
    starting.join()
    server = box["server"]
    load = None
    try:
        with Client(server.grpc) as client:
            wait_for(lambda: version_states(client, "moons") == ["AVAILABLE"])
        score = ["score", "--server", server.grpc, "--model", "moons", "--input", str(tmp_path / "new.npy")]
        assert cli.main(score + ["--out", str(tmp_path / "v1.csv")]) == 0
        load = Load(server.grpc, "moons")
        retrain = config(tmp_path, "v2", {"name": "npy", "path": str(tmp_path / "new.npy")})
        (tmp_path / "retrain.yaml").write_text(yaml.safe_dump(retrain))
        assert cli.main(["train", str(tmp_path / "retrain.yaml"), "--init-from", str(base), "--add-version",
                         "--learning-rate", "0.05"]) == 0
        assert "parent v1" in capsys.readouterr().out
        load.switched_to(2)
        assert cli.main(score + ["--out", str(tmp_path / "v2.csv")]) == 0
        assert mean_log_prob(tmp_path / "v2.csv") > mean_log_prob(tmp_path / "v1.csv") + 0.1
        assert cli.main(["publish", str(base), "--rollback"]) == 0
        load.switched_to(1)
        assert sorted(p.name for p in base.iterdir()) == ["1", "rolled-back-2"]
        assert cli.main(["publish", str(base), "--restore"]) == 0
        load.switched_to(2)
    finally:
        if load is not None:
            load.close()
        assert server.terminate() == 0
    assert load.failures == []
    first_two = load.versions.index(2)
    back_to_one = load.versions.index(1, first_two)
    assert set(load.versions[:first_two]) == {1} and 2 in load.versions[back_to_one:]
