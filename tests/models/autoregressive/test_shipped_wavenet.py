"""The shipped speech WaveNet: exact held-out bits per audio sample, recomputed from the
file, below the bench's two baselines on the same split; the exported queue sampler
draws what the trained network's naive sampler draws; the trained network sees exactly
its receptive field; rows are independent of their batch; the length cap is an
INVALID_ARGUMENT naming it, in process and from a served model."""

import os
import sys

import grpc
import numpy as np
import pytest
from shipped import ROOT, newest, rebuilt

from tfgen.backend import tf
from tfgen.data.datasets import load_dataset
from tfgen.export.reader import read_metadata

sys.path.insert(0, os.path.join(ROOT, "bench"))
from audio_baselines import histogram_bits, linear_prediction_bits  # noqa: E402

NAME = "speech_wavenet"


@pytest.fixture(scope="module")
def export():
    path = newest(NAME)
    meta = read_metadata(path)
    return path, meta, tf.saved_model.load(path), rebuilt(path), load_dataset(dict(meta["training_data"]["data"]))


def test_exact_held_out_bits_per_sample_beat_both_baselines(export):
    _, meta, loaded, _, dataset = export
    assert meta["log_prob_kind"] == "exact" and meta["metrics"]["split"] == "test"
    test = dataset.splits["test"]
    bits = loaded.signatures["log_prob"](x=tf.constant(test.x), condition=tf.constant(test.y))["bits_per_dim"]
    recomputed = float(np.mean(bits.numpy()))
    assert abs(recomputed - meta["metrics"]["bits_per_dim"]) < 1e-3, recomputed
    splits = dataset.splits
    histogram = histogram_bits(splits["train"].x, test.x, dataset.spec.levels)
    linear, _ = linear_prediction_bits(splits["train"].x, splits["validation"].x, test.x, dataset.spec.levels)
    assert recomputed < min(histogram, linear) - 0.5, (recomputed, histogram, linear)


def test_exported_queue_sampler_draws_what_the_trained_naive_sampler_draws(export):
    _, _, loaded, model, _ = export
    seeds, condition = tf.constant([0, 1, 2, 3], tf.int64), tf.constant([0, 1, 2, 3], tf.int32)
    temperature, length = tf.constant([1.0, 0.9, 1.0, 0.7]), tf.fill([4], 150)
    served = loaded.signatures["sample"](seed=seeds, temperature=temperature, condition=condition, length=length)
    naive = tf.function(model.sample_naive, autograph=False)(seeds, temperature, condition, length)
    np.testing.assert_array_equal(served["samples"].numpy(), naive.numpy())
    np.testing.assert_allclose(served["log_prob"].numpy(), model.log_prob(naive, condition).numpy(),
                               rtol=1e-5, atol=1e-3)
    # Row independence: a row alone draws what it drew in the batch.
    alone = loaded.signatures["sample"](seed=seeds[2:3], temperature=temperature[2:3], condition=condition[2:3],
                                        length=length[2:3])["samples"]
    np.testing.assert_array_equal(alone.numpy()[0], served["samples"].numpy()[2])


def test_trained_network_sees_exactly_its_receptive_field(export):
    _, _, _, model, dataset = export
    field = model.receptive_field
    x = dataset.splits["test"].x[:1, :field + 100]
    t = field + 50
    positions = [t - field - 1, t - field, t - field + 1, t - 300, t - 1, t, t + 1, t + 40]
    moved = np.repeat(x, len(positions), axis=0)
    for row, s in enumerate(positions):
        moved[row, s, 0] = (moved[row, s, 0] + 100) % 256
    condition = tf.zeros([len(positions)], tf.int32)
    base = model.logits(x, condition[:1]).numpy()[0, t]
    logits = model.logits(moved, condition).numpy()[:, t]
    changed = [s for s, row in zip(positions, logits) if not np.allclose(row, base, atol=1e-6)]
    assert changed == [t - field, t - field + 1, t - 300, t - 1]  # x[t - field .. t - 1]


def test_more_audio_than_the_cap_is_invalid_argument_naming_it(export):
    path, meta, loaded, _, _ = export
    cap = meta["config"]["max_length"] or 10 * meta["data_spec"]["sample_rate"]
    inputs = {"seed": tf.constant([0], tf.int64), "temperature": tf.ones([1]), "condition": tf.zeros([1], tf.int32),
              "length": tf.constant([cap + 1])}
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"at most {cap} samples"):
        loaded.signatures["sample"](**inputs)

    from tfgen.serving import Client
    from tfgen.serving.model_manager import ModelConfig
    from tfgen.serving.server import ServerOptions, start_in_thread

    server = start_in_thread(ServerOptions(models=[ModelConfig(name=NAME, base_path=os.path.dirname(path))],
                                           port=0, rest_api_port=0, file_system_poll_wait_seconds=0))
    try:
        with Client(server.grpc_address, timeout=60) as client:
            with pytest.raises(grpc.RpcError) as error:
                client.predict(NAME, {k: v.numpy() for k, v in inputs.items()}, signature="sample")
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            # The graph check's message and value, not the export's node names.
            assert error.value.details().startswith(f"length: at most {cap} samples")
            assert error.value.details().endswith(f"asked for {cap + 1}")
    finally:
        server.stop()
