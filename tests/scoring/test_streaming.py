"""`tfgen score`: every input format, every output format, flat memory, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import toy_savedmodels

from tfgen.cli import main
from tfgen.scoring.outputs import read_records

EVENT = (4, 4, 1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{name: base path}: 4x4x1 images, 16-sample audio (8 kHz, continuous), slow vectors."""
    root = tmp_path_factory.mktemp("streaming")
    paths = {"img": str(root / "img"), "wav": str(root / "wav"), "slow": str(root / "slow")}
    toy_savedmodels.write_model(paths["img"], 1, event_shape=EVENT, warmup=False)
    version = toy_savedmodels.write_model(paths["wav"], 1, event_shape=(16, 1), warmup=False)
    os.makedirs(os.path.join(version, "assets.extra"))
    with open(os.path.join(version, "assets.extra", "tfgen.json"), "w") as f:
        json.dump({"data_spec": {"levels": None, "sample_rate": 8000}}, f)
    toy_savedmodels.write_model(paths["slow"], 1, warmup=False, delay_ms=25)
    return paths


@pytest.fixture(scope="module")
def pixels():
    """12 images of integer pixel values: each format below holds pixels / 255."""
    return np.random.default_rng(0).integers(0, 256, size=[12, *EVENT]).astype(np.uint8)


def write_every_format(folder, pixels):
    """The same 12 examples as .npy, .npz, .csv, .parquet, .tfrecord and a PNG folder, with
    one bad row each where the format can hold one; returns {format: (path, bad rows)}."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow as tf
    from PIL import Image

    x = pixels.astype(np.float32) / 255.0
    flat = x.reshape(len(x), -1)
    keys = [f"row{i}" for i in range(len(x))]
    files = {}
    np.save(folder / "x.npy", x)
    files["npy"] = (folder / "x.npy", {})
    np.savez(folder / "x.npz", x=x)
    files["npz"] = (folder / "x.npz", {})
    lines = ["key," + ",".join(f"p{i}" for i in range(16))]
    lines += [f"{k}," + ",".join(repr(float(v)) for v in row) for k, row in zip(keys, flat)]
    lines[4] = lines[4].rsplit(",", 1)[0]  # row 3: 15 values
    (folder / "x.csv").write_text("\n".join(lines) + "\n")
    files["csv"] = (folder / "x.csv", {3: "expected 16 values"})
    values = [list(map(float, row)) for row in flat]
    values[5] = values[5][:-2]  # row 5: 14 values
    pq.write_table(pa.table({"key": keys, "x": values}), folder / "x.parquet")
    files["parquet"] = (folder / "x.parquet", {5: "expected 16 values"})
    with tf.io.TFRecordWriter(str(folder / "x.tfrecord")) as w:
        for i, (k, row) in enumerate(zip(keys, flat)):
            if i == 7:
                w.write(b"not an Example")
                continue
            w.write(tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=row)),
                "key": tf.train.Feature(bytes_list=tf.train.BytesList(value=[k.encode()]))})).SerializeToString())
    files["tfrecord"] = (folder / "x.tfrecord", {7: "not a tf.train.Example"})
    (folder / "png").mkdir()
    for i, image in enumerate(pixels):
        Image.fromarray(image[..., 0]).save(folder / "png" / f"{keys[i]}.png")
    (folder / "png" / "row10.png").write_text("not a PNG")
    Image.fromarray(np.zeros([5, 4], np.uint8)).save(folder / "png" / "row11.png")
    # sorted file names: row0, row1, row10, row11, row2, ...
    files["png"] = (folder / "png", {2: "not a readable image", 3: "image is 4x5x1"})
    return files, keys


@pytest.fixture(scope="module")
def img_scorer(models):
    """The image model loaded once, for the tests of formats (the CLI is tested on one)."""
    from tfgen.scoring.score import LocalScorer

    return LocalScorer(models["img"])


def test_every_input_format_gives_the_same_scores_and_flags_bad_rows_in_place(models, img_scorer, pixels, tmp_path):
    from tfgen.scoring.score import score_file

    files, keys = write_every_format(tmp_path, pixels)
    expected, _ = toy_savedmodels.log_prob_np(pixels.astype(np.float32) / 255.0)
    for name, (path, bad) in files.items():
        out = tmp_path / f"{name}.jsonl"
        keyed = name in ("csv", "parquet", "tfrecord")
        if name == "csv":  # through the command line, as a user runs it
            assert main(["score", "--model", models["img"], "--input", str(path), "--out", str(out),
                         "--batch-size", "5", "--key-column", "key"]) == 0, name
        else:
            score_file(img_scorer, str(path), str(out), 5, key_column="key" if keyed else None, progress=False)
        rows = read_records(str(out))
        assert [r["index"] for r in rows] == list(range(12)), name
        order = sorted(keys) if name == "png" else keys  # a folder is read in name order
        for i, r in enumerate(rows):
            if i in bad:
                assert bad[i] in r["error"] and r["log_prob"] is None, (name, r)
                continue
            assert r["error"] is None and r["is_finite"], (name, r)
            source = keys.index(order[i])
            np.testing.assert_allclose(r["log_prob"], expected[source], rtol=1e-5, err_msg=name)
            if name == "png":
                assert r["key"] == order[i] + ".png"
            elif keyed:
                assert r["key"] == keys[i]


def test_output_formats_hold_the_same_rows_and_an_unknown_one_is_refused_first(models, img_scorer, pixels, tmp_path,
                                                                               capsys):
    from tfgen.scoring.score import score_file

    x = pixels.astype(np.float32) / 255.0
    x[2, 0, 0, 0] = np.nan
    np.save(tmp_path / "x.npy", x)
    records = {}
    for ext in (".csv", ".jsonl", ".parquet"):
        out = tmp_path / f"scores{ext}"
        score_file(img_scorer, str(tmp_path / "x.npy"), str(out), 4, progress=False)
        records[ext] = read_records(str(out))
    assert records[".csv"] == records[".jsonl"] == records[".parquet"]
    assert "non-finite" in records[".csv"][2]["error"] and len(records[".csv"]) == 12
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "scores.parquet").schema.field("log_prob").type == "double"
    capsys.readouterr()
    out = tmp_path / "scores.xlsx"
    assert main(["score", "--model", models["img"], "--input", str(tmp_path / "x.npy"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write '.xlsx'" in err, err
    assert not out.exists() and not (tmp_path / ".scores.xlsx.parts").exists()


def test_wav_folder_rows_keep_their_files_and_classes(models, tmp_path):
    from scipy.io import wavfile

    rng = np.random.default_rng(1)
    waves = rng.uniform(-0.9, 0.9, size=[3, 16]).astype(np.float32)
    for i, wave in enumerate(waves):
        wavfile.write(tmp_path / f"a{i}.wav", 8000, wave)
    wavfile.write(tmp_path / "b_short.wav", 8000, waves[0, :12])
    (tmp_path / "c_broken.wav").write_bytes(b"RIFF....WAVE")
    out = tmp_path / "out.csv"
    assert main(["score", "--model", models["wav"], "--input", str(tmp_path), "--out", str(out)]) == 0
    rows = read_records(str(out))
    assert [r["key"] for r in rows] == ["a0.wav", "a1.wav", "a2.wav", "b_short.wav", "c_broken.wav"]
    np.testing.assert_allclose([r["log_prob"] for r in rows[:3]],
                               toy_savedmodels.log_prob_np(waves)[0], rtol=1e-5)
    assert "expected 16 values" in rows[3]["error"] and "not a readable WAV" in rows[4]["error"]


def test_progress_bar_only_when_asked_or_on_a_terminal(models, pixels, tmp_path, capsys):
    np.save(tmp_path / "x.npy", pixels.astype(np.float32))
    args = ["score", "--model", models["img"], "--input", str(tmp_path / "x.npy"), "--batch-size", "4"]
    assert main([*args, "--out", str(tmp_path / "a.csv")]) == 0
    assert "rows/s]" not in capsys.readouterr().err  # not a terminal: quiet
    assert main([*args, "--out", str(tmp_path / "b.csv"), "--progress"]) == 0
    assert "12/12" in capsys.readouterr().err


@pytest.mark.slow  # 9 s: a killed scoring process and its resume
def test_a_killed_run_resumes_without_duplicates_or_gaps(models, tmp_path, capsys):
    """SIGKILL mid-run, then --resume: the output equals an uninterrupted run's, row for row."""
    x = np.random.default_rng(2).normal(size=[400, 2]).astype(np.float32)
    x[::37] = np.nan
    np.save(tmp_path / "x.npy", x)
    args = ["score", "--model", models["slow"], "--input", str(tmp_path / "x.npy"),
            "--batch-size", "8", "--shard-rows", "16"]
    out = tmp_path / "resumed.parquet"
    parts = tmp_path / ".resumed.parquet.parts"
    child = subprocess.Popen([sys.executable, "-m", "tfgen", *args, "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if parts.is_dir() and len(list(parts.glob("shard-*.summary.json"))) >= 4:
                break
            time.sleep(0.05)
        assert child.poll() is None, child.stderr.read().decode()
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    finished = len(list(parts.glob("shard-*.summary.json")))
    assert 4 <= finished < 25 and not out.exists()
    # Without --resume the leftover run is not silently overwritten.
    assert main([*args, "--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main([*args, "--out", str(out), "--resume"]) == 0
    assert f"{finished * 16} rows from the interrupted run's shards" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "whole.parquet")]) == 0
    resumed, whole = read_records(str(out)), read_records(str(tmp_path / "whole.parquet"))
    assert resumed == whole and [r["index"] for r in resumed] == list(range(400))
    assert not parts.exists()
    # A resume against a changed input is refused, naming what changed.
    child_parts = tmp_path / ".again.csv.parts"
    child_parts.mkdir()
    (child_parts / "manifest.json").write_text(json.dumps({"batch_size": 4}))
    assert main([*args, "--out", str(tmp_path / "again.csv"), "--resume"]) == 2
    assert "differs in batch_size" in capsys.readouterr().err


RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from tfgen.scoring.score import LocalScorer, score_file
    model, small, big, out = sys.argv[1:]
    scorer = LocalScorer(model)
    score_file(scorer, small, out + ".small.parquet", batch_size=16, progress=False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = score_file(scorer, big, out + ".big.parquet", batch_size=16, progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "after_kb": after, "rows": summary.rows,
                      "scored": summary.scored}))
""")


@pytest.mark.slow  # a fresh process and a 192 MiB file: ~13 s on a quiet machine
def test_memory_stays_flat_for_an_input_far_larger_than_the_batch(tmp_path):
    """A 192 MiB .npy (768x the 256 KiB batch) raises peak RSS by far less than its size
    over a run of a 1/16 as large file, measured in a fresh process."""
    event = 4096  # 16 KiB per row, 16 rows per batch
    model = str(tmp_path / "wide")
    toy_savedmodels.write_model(model, 1, event_shape=(event,), warmup=False)
    rng = np.random.default_rng(3)
    for name, rows in (("small", 768), ("big", 12288)):
        with open(tmp_path / f"{name}.npy", "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (rows, event)})
            for _ in range(rows // 768):
                rng.normal(size=[768, event]).astype(np.float32).tofile(f)
    assert os.path.getsize(tmp_path / "big.npy") > 10 * 16 * event * 4 * 16
    result = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, model, str(tmp_path / "small.npy"),
         str(tmp_path / "big.npy"), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["rows"] == measured["scored"] == 12288
    growth_mb = (measured["after_kb"] - measured["before_kb"]) / 1024
    assert growth_mb < 40, measured  # the input is 192 MiB
