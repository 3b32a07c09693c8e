"""`tfgen sample --server`: the CLI over a real gRPC server on a loopback port."""

import os
import wave

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import make_server
from tfgen.cli import main
from tfgen.export.reader import call_signature
from tfgen.serving.model_manager import ModelConfig

T = 64


class ToyImage(tf.Module):
    """A conditional model of 4x4x1 images with 17 levels (the digits layout, smaller)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="seed"),
                                  tf.TensorSpec([None], tf.float32, name="temperature"),
                                  tf.TensorSpec([None], tf.int32, name="condition")])
    def sample(self, seed, temperature, condition):
        noise = tf.map_fn(
            lambda s: tf.random.stateless_uniform([4, 4, 1], seed=tf.stack([s, tf.constant(3, tf.int64)])),
            seed, fn_output_signature=tf.TensorSpec([4, 4, 1], tf.float32))
        level = noise * 16.0 * temperature[:, None, None, None]
        level += tf.cast(condition, tf.float32)[:, None, None, None]
        samples = tf.clip_by_value(tf.round(level), 0.0, 16.0)
        return {"samples": samples, "log_prob": tf.zeros_like(temperature)}


class ToyAudio(tf.Module):
    """samples [B, T, 1] in -1 .. 1: audio-shaped, as an audio model's would be."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="seed"),
                                  tf.TensorSpec([None], tf.float32, name="temperature")])
    def sample(self, seed, temperature):
        t = tf.range(T, dtype=tf.float32)[None, :, None]
        wave_ = tf.sin(t * 0.3 * tf.cast(seed + 1, tf.float32)[:, None, None])
        return {"samples": wave_ * tf.minimum(temperature, 1.0)[:, None, None]}


@pytest.fixture(scope="module")
def sample_server(tmp_path_factory, exported):
    root = tmp_path_factory.mktemp("sample_server")
    image_dir = str(root / "image" / "1")
    image = ToyImage()
    tf.saved_model.save(image, image_dir, signatures={"sample": image.sample})
    audio = ToyAudio()
    tf.saved_model.save(audio, str(root / "audio" / "1"), signatures={"sample": audio.sample})
    models = [ModelConfig("toy", os.path.dirname(exported["toy"])),
              ModelConfig("image", str(root / "image")),
              ModelConfig("audio", str(root / "audio"))]
    srv = make_server(models, rest_api_port=None)
    yield srv, image_dir
    srv.stop()


def test_sample_server_writes_an_image_grid_png(sample_server, tmp_path):
    srv, image_dir = sample_server
    out = tmp_path / "grid.png"
    assert main(["sample", "--server", srv.grpc_address, "--model", "image", "-n", "6",
                 "--condition", "2", "--levels", "17", "--temperature", "0.7", "--seed", "3",
                 "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and min(image.size) >= 64
    # The same samples as the export called in this process.
    raw = tmp_path / "raw.npy"
    assert main(["sample", "--server", srv.grpc_address, "--model", "image", "--version", "1",
                 "-n", "6", "--condition", "2", "--temperature", "0.7", "--seed", "3",
                 "--out", str(raw)]) == 0
    local = call_signature(image_dir, "sample", {
        "seed": np.arange(3, 9, dtype=np.int64), "temperature": np.full([6], 0.7, np.float32),
        "condition": np.full([6], 2, np.int32)})
    np.testing.assert_array_equal(np.load(raw), local["samples"])


def test_sample_server_2d_scatter_and_wav(sample_server, tmp_path):
    srv, _ = sample_server
    out = tmp_path / "scatter.png"
    assert main(["sample", "--server", srv.grpc_address, "--model", "toy", "-n", "40",
                 "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG"
    wav = tmp_path / "audio.wav"
    assert main(["sample", "--server", srv.grpc_address, "--model", "audio", "-n", "3",
                 "--sample-rate", "8000", "--out", str(wav)]) == 0
    with wave.open(str(wav)) as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 8000)
        frames = np.frombuffer(f.readframes(f.getnframes()), "<i2")
    gap = int(0.1 * 8000)
    assert len(frames) == 3 * T + 2 * gap
    expected = np.round(np.sin(np.arange(T) * 0.3) * 32767)
    np.testing.assert_allclose(frames[:T], expected, atol=2)


@pytest.mark.parametrize("args, message", [
    (["--model", "image"], "is conditional: pass --condition"),
    (["--model", "toy", "--condition", "1"], "unconditional"),
    (["--model", "nope"], "NOT_FOUND"),
    (["--model", "toy", "--version", "9"], "NOT_FOUND"),
    (["--model", "audio"], "use --out FILE.wav"),
])
def test_sample_server_errors_are_one_line(sample_server, tmp_path, capsys, args, message):
    srv, _ = sample_server
    out = tmp_path / "x.png"
    assert main(["sample", "--server", srv.grpc_address, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()
