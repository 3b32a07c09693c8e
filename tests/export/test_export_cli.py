"""`tfgen sample` (locally and --server) and `tfgen check` (tfgen.export.cli), run
through `tfgen.cli.main`."""

import os
import wave

import numpy as np
import pytest
import tiny_models
from PIL import Image

from tfgen.backend import tf

from tfgen.cli import main
from tfgen.export import conformance
from tfgen.export.conformance import Check, Report
from tfgen.export.reader import call_signature
from tfgen.export.saved_model import export_model


SHIPPED_SCORE_MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "saved_models", "checkerboard_score")


def test_sample_passes_a_score_model_s_langevin_settings(tmp_path):
    out = tmp_path / "samples.npy"
    assert main(["sample", "--model", SHIPPED_SCORE_MODEL, "-n", "4", "--steps", "2", "--step-size", "1e-4",
                 "--out", str(out)]) == 0
    path = os.path.join(SHIPPED_SCORE_MODEL, "1")
    expected = call_signature(path, "sample", {"seed": np.arange(4), "temperature": np.ones(4, np.float32),
                                               "steps": np.full(4, 2, np.int32),
                                               "step_size": np.full(4, 1e-4, np.float32)})
    np.testing.assert_array_equal(np.load(out), expected["samples"])


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
    (["--model", "{vector}", "--steps", "5"], "RealNVP, whose sample takes none"),
    (["--model", "{score}", "--eta", "0.5"], "(a NCSN: it takes --step-size, --steps)"),
    (["--model", "{score}", "--step-size", "0"], "--step-size must be a finite number > 0"),
])
def test_sample_bad_input_is_one_line(exports, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": str(tmp_path / "missing"), "empty": str(tmp_path / "empty"),
             "image": exports.path("real_nvp_image_conditional"), "vector": exports.path("real_nvp_vector"),
             "score": SHIPPED_SCORE_MODEL}
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


# === tfgen sample --server: what to write comes from the describe signature ===

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(gRPC address, {name: version dir}) of a server holding tiny exports of every
    kind, and a SavedModel without a describe signature (not a tfgen export)."""
    from tfgen.serving.model_manager import ModelConfig
    from tfgen.serving.server import ServerOptions, start_in_thread

    root = tmp_path_factory.mktemp("served")
    models = {"image": tiny_models.image_flow(), "moons": tiny_models.vector_flow(),
              "vector8": tiny_models.vector_flow(dims=8), "audio": tiny_models.audio_flow(sample_rate=8000)}
    paths = {name: export_model(model, str(root / name)) for name, model in models.items()}
    plain = tf.Module()
    plain.sample = tf.function(lambda seed: {"samples": tf.zeros([tf.size(seed), 2])},
                               input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])
    tf.saved_model.save(plain, str(root / "plain" / "1"), signatures={"sample": plain.sample})
    paths["plain"] = str(root / "plain" / "1")
    srv = start_in_thread(ServerOptions(
        models=[ModelConfig(name, os.path.dirname(path)) for name, path in paths.items()], port=0,
        rest_api_port=None, file_system_poll_wait_seconds=0))
    yield srv.grpc_address, paths
    srv.stop()


def _sample_server(served, name, out, *args):
    return main(["sample", "--server", served[0], "--model", name, "--out", str(out), *args])


def test_server_image_grid_and_the_same_samples_as_the_export(served, tmp_path):
    assert _sample_server(served, "image", tmp_path / "grid.png", "-n", "6", "--temperature", "0.7") == 0
    with Image.open(tmp_path / "grid.png") as image:
        assert image.format == "PNG" and min(image.size) >= 64
    # Without --condition the classes cycle, as they do locally; the served samples are
    # the export's own.
    assert _sample_server(served, "image", tmp_path / "raw.npy", "-n", "6", "--seed", "3",
                          "--version", "1") == 0
    expected = call_signature(served[1]["image"], "sample", {
        "seed": np.arange(3, 9, dtype=np.int64), "temperature": np.ones(6, np.float32),
        "condition": np.arange(6, dtype=np.int32) % 3})
    np.testing.assert_array_equal(np.load(tmp_path / "raw.npy"), expected["samples"])


def test_server_2d_scatter(served, tmp_path):
    assert _sample_server(served, "moons", tmp_path / "scatter.png", "-n", "40") == 0
    with Image.open(tmp_path / "scatter.png") as image:
        assert image.format == "PNG"


def test_server_audio_is_a_wav_at_the_model_s_sample_rate(served, tmp_path):
    assert _sample_server(served, "audio", tmp_path / "clip.wav", "-n", "3", "--sample-rate", "16000") == 0
    with wave.open(str(tmp_path / "clip.wav")) as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 8000)
        frames = f.getnframes()
    assert frames == 3 * 64 + 2 * int(0.1 * 8000)


def test_server_an_8_d_vector_model_is_not_taken_for_audio(served, tmp_path, capsys):
    """[B, 8] samples look like short audio clips; the model says it is vector data."""
    assert _sample_server(served, "vector8", tmp_path / "x.wav", "-n", "4") == 2
    assert "vector samples are written as PNG (or .npy), not WAV" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()
    assert _sample_server(served, "vector8", tmp_path / "x.png", "-n", "4") == 2
    assert "no picture for kind 'vector' with event_shape (8,)" in capsys.readouterr().err
    assert _sample_server(served, "vector8", tmp_path / "x.npy", "-n", "4") == 0
    assert np.load(tmp_path / "x.npy").shape == (4, 8)


@pytest.mark.parametrize("args, message", [
    (["--model", "image", "--condition", "3"], "condition must be in 0 .. 2"),
    (["--model", "moons", "--condition", "1"], "unconditional"),
    (["--model", "nope"], "NOT_FOUND"),
    (["--model", "moons", "--version", "9"], "NOT_FOUND"),
    (["--model", "audio"], "use --out FILE.wav"),
    (["--model", "plain"], "not a tfgen export with a describe signature"),
])
def test_server_errors_are_one_line(served, tmp_path, capsys, args, message):
    out = tmp_path / "x.png"
    assert main(["sample", "--server", served[0], *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("tfgen sample: error:"), err
    assert not out.exists()


def test_local_sample_runs_in_batches_with_the_same_rows(exports, tmp_path, capsys):
    """`-n` above one batch (1024 rows) is sampled batch by batch, with a progress bar;
    every row is what one call with all the seeds gives."""
    path = exports.path("real_nvp_vector")
    out = tmp_path / "many.npy"
    assert main(["sample", "--model", path, "-n", "2500", "--out", str(out)]) == 0
    expected = call_signature(path, "sample", {"seed": np.arange(2500, dtype=np.int64),
                                               "temperature": np.ones(2500, np.float32)})
    np.testing.assert_allclose(np.load(out), expected["samples"], rtol=1e-5, atol=1e-6)
    assert "2500/2500" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["grid.jpg", "grid.jpeg", "grid", "grid.PDF"])
def test_sample_refuses_an_extension_it_does_not_write(exports, tmp_path, capsys, name):
    assert main(["sample", "--model", exports.path("real_nvp_vector"), "--out",
                 str(tmp_path / name)]) == 2
    assert "tfgen sample writes .png, .wav, .npy" in capsys.readouterr().err
    assert not (tmp_path / name).exists()


def test_server_sample_above_the_server_s_row_limit_is_split(served, tmp_path):
    """`tfgen sample --server -n 5000` failed at the server's 4096-row limit."""
    out = tmp_path / "many.npy"
    assert _sample_server(served, "moons", out, "-n", "5000") == 0
    expected = call_signature(served[1]["moons"], "sample", {
        "seed": np.arange(5000, dtype=np.int64), "temperature": np.ones(5000, np.float32)})
    np.testing.assert_allclose(np.load(out), expected["samples"], rtol=1e-5, atol=1e-6)


def test_sample_fills_an_audio_model_s_defaulted_length(tmp_path):
    import zoo

    base = str(tmp_path / "wavenet")
    export_model(zoo.build("wavenet_audio_conditional"), base)
    out = tmp_path / "voice.wav"
    assert main(["sample", "--model", base, "-n", "2", "--condition", "1", "--out", str(out)]) == 0
    with wave.open(str(out)) as audio:
        assert audio.getnchannels() == 1 and audio.getframerate() == 8000 and audio.getnframes() > 2 * 24
    # --length sets the samples per row (WAV: two rows with 0.1 s of silence between).
    assert main(["sample", "--model", base, "-n", "2", "--length", "40", "--out", str(out)]) == 0
    with wave.open(str(out)) as audio:
        assert audio.getnframes() == 2 * 40 + 800
    np.save(tmp_path / "raw.npy", np.zeros(1))
    assert main(["sample", "--model", base, "-n", "3", "--length", "40", "--out", str(tmp_path / "raw.npy")]) == 0
    assert np.load(tmp_path / "raw.npy").shape[:2] == (3, 40)


def test_sample_length_errors_name_the_problem(tmp_path, capsys):
    import zoo

    base = str(tmp_path / "wavenet")
    model = zoo.build("wavenet_audio_conditional")
    export_model(model, base)
    out = str(tmp_path / "voice.wav")
    assert main(["sample", "--model", base, "--length", "0", "--out", out]) == 2
    assert main(["sample", "--model", base, "--length", str(model.max_length + 1), "--out", out]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors[0] == "tfgen sample: error: --length must be >= 1, got 0"
    # The graph's own check, without the graph's node names.
    assert errors[1].startswith(f"tfgen sample: error: length: at most {model.max_length} samples")
    assert errors[1].endswith(f"asked for {model.max_length + 1}") and len(errors) == 2
    assert not os.path.exists(out)
