"""`tfgen score --runner DirectRunner`: Beam's RunInference with tfgen's signature handler,
rows read on the workers and written by Beam's file sinks, gives the local path's records,
row for row (joined on index). Other runners cannot run here (no job servers, no cloud):
their options and pipeline graphs are checked offline."""

import glob
import os

import numpy as np
import pytest

from tfgen.cli import main
from tfgen.scoring.outputs import read_records

pytest.importorskip("apache_beam", reason="the beam extra: pip install 'tfgen[beam]'")

ROWS = 37


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, scoring_exports):
    """The conditional image export (as `img`) and its inputs, with a NaN row and a class
    the model refuses."""
    root = tmp_path_factory.mktemp("beam")
    os.symlink(scoring_exports["img"], root / "img")
    x = np.random.default_rng(0).integers(0, 17, size=[ROWS, 4, 4, 1]).astype(np.float32)
    x[5, 0, 0, 0] = np.nan
    condition = np.arange(ROWS) % 3
    condition[11] = 7  # the model refuses this row's class
    np.savez(root / "x.npz", x=x, condition=condition)
    np.save(root / "x.npy", x)
    np.save(root / "condition.npy", condition)
    return root


@pytest.fixture(scope="module")
def local(inputs, tmp_path_factory):
    """The local path's records (no Beam), the reference every Beam run must equal."""
    out = tmp_path_factory.mktemp("local") / "local.jsonl"
    assert main(["score", "--model", str(inputs / "img"), "--input", str(inputs / "x.npz"),
                 "--batch-size", "8", "--out", str(out)]) == 0
    records = read_records(str(out))
    assert "non-finite" in records[5]["error"] and "condition out of range" in records[11]["error"]
    assert sum(r["error"] is None for r in records) == ROWS - 2
    return records


def _by_index(records):
    records = sorted(records, key=lambda r: r["index"])
    assert [r["index"] for r in records] == list(range(ROWS))  # every row once: no gap, no duplicate
    return records


def _score(inputs, out, *args, model=None):
    return main(["score", "--model", model or str(inputs / "img"), "--input", str(inputs / "x.npz"),
                 "--batch-size", "8", "--out", str(out), "--runner", "DirectRunner", *args])


@pytest.fixture(scope="module")
def model(inputs):
    from tfgen.scoring.score import LocalScorer

    return LocalScorer(str(inputs / "img"))


SUMMARY = f"{ROWS} rows: {ROWS - 2} scored, 2 not scored (see their error column), 0 scored with a non-finite"


@pytest.mark.slow  # 13 s: two worker processes import TensorFlow; the in-process runner below runs by default
def test_two_worker_processes_score_split_reads_every_row_once(inputs, model, local, tmp_path):
    """DirectRunner's multi_processing mode: 8 row ranges of the .npy read, scored and
    written by 2 worker processes (each importing TensorFlow and loading the model), the
    counts come back through the Fn API's metrics, and joined on index the output is the
    local path's, row for row."""
    import resource

    from tfgen.scoring.beam import score_with_beam

    def children_cpu():
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    before = children_cpu()
    counts = score_with_beam(model, str(inputs / "x.npy"), str(tmp_path / "mp.parquet"), "DirectRunner",
                             ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
                             batch_size=4, condition_file=str(inputs / "condition.npy"), split_rows=5)
    assert children_cpu() - before > 1.0  # the work ran in child processes, not in this one
    assert counts == {"rows": ROWS, "scored": ROWS - 2, "errors": 2, "non_finite": 0}
    assert _by_index(read_records(str(tmp_path / "mp.parquet"))) == local


def test_direct_runner_loads_the_model_through_gfile_and_writes_the_local_records(inputs, local, tmp_path, capsys):
    """`tfgen score --runner DirectRunner` with the model at a URL only TensorFlow's gfile
    can read (its in-memory ram:// file system, visible to DirectRunner's in-process
    workers): no local path is involved. The output goes to 2 files (`--out-shards`),
    which hold every row once, and the summary's counts come from the workers' metrics."""
    import tensorflow as tf

    source, url = str(inputs / "img"), "ram://beam-test/img"
    for folder, _, files in tf.io.gfile.walk(source):
        target = url + folder[len(source):]
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(f"{folder}/{name}", f"{target}/{name}", overwrite=True)
    capsys.readouterr()
    assert _score(inputs, tmp_path / "gfile.jsonl", "--out-shards", "2", model=url) == 0
    assert SUMMARY in capsys.readouterr().out
    shards = sorted(glob.glob(str(tmp_path / "gfile-*-of-00002.jsonl")))
    assert len(shards) == 2
    assert _by_index([r for s in shards for r in read_records(s)]) == local
    assert not glob.glob(str(tmp_path / "beam-temp*"))  # the sink's temporary files are gone


def test_a_run_that_scored_no_row_exits_1_with_every_row_flagged(inputs, tmp_path, capsys):
    """Through the CSV sink (its header line, empty cells for no score)."""
    np.save(tmp_path / "bad.npy", np.full([3, 4, 4, 1], np.nan, np.float32))
    assert main(["score", "--model", str(inputs / "img"), "--input", str(tmp_path / "bad.npy"),
                 "--condition-file", str(inputs / "condition.npy"), "--out", str(tmp_path / "bad.csv"),
                 "--runner", "DirectRunner"]) == 1
    assert "none of the 3 rows could be scored" in capsys.readouterr().err
    records = sorted(read_records(str(tmp_path / "bad.csv")), key=lambda r: r["index"])
    assert [(r["index"], r["log_prob"], r["error"]) for r in records] == [
        (i, None, "non-finite input (NaN or Inf)") for i in range(3)]


def test_bad_runner_options_are_one_line_errors(inputs, tmp_path, capsys):
    assert _score(inputs, tmp_path / "a.csv", "--pipeline-option=--direct_num_wrkers=2") == 2
    assert "unknown Beam pipeline option(s) ['direct_num_wrkers']" in capsys.readouterr().err
    out = tmp_path / "b.csv"
    assert main(["score", "--model", str(inputs / "img"), "--input", str(inputs / "x.npz"), "--out", str(out),
                 "--runner", "DataflowRunner", "--pipeline-option=--project=p",
                 "--pipeline-option=--region=europe-west1"]) == 2  # (no region: Beam asks gcloud, 2 s)
    err = capsys.readouterr().err
    assert "Missing GCS path option: temp_location" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["score", "--model", str(inputs / "img"), "--input", "gs://bucket/x.npy",
                 "--out", str(out)]) == 2  # URLs are for --runner
    assert "read by `tfgen score --runner`" in capsys.readouterr().err


@pytest.mark.parametrize("runner, options", [
    ("FlinkRunner", ["--flink_master=localhost:8081", "--environment_type=LOOPBACK", "--parallelism=4"]),
    ("SparkRunner", ["--spark_master_url=spark://localhost:7077", "--environment_type=LOOPBACK"]),
    ("DataflowRunner", ["--project=my-project", "--region=europe-west1", "--temp_location=gs://my-bucket/tmp",
                        "--requirements_file=requirements.txt", "--max_num_workers=8"]),
])
def test_remote_runner_pipelines_build_with_their_documented_options(inputs, model, runner, options):
    """What can be checked without a cluster: docs/beam.md's flags parse, the runner is
    the one named, and the graph (as it is sent to a job server) holds every step."""
    from tfgen.scoring.beam import build_pipeline

    # The input's row count is read here, on the launcher; the output is an S3 URL (Beam's
    # S3 file system is installed, and building the sink does not reach the bucket).
    pipeline = build_pipeline(model, str(inputs / "x.npy"), "s3://my-bucket/scores.parquet", runner, options,
                              condition_file=str(inputs / "condition.npy"))
    assert type(pipeline.runner).__name__ == runner
    names = {t.unique_name for t in pipeline.to_runner_api().components.transforms.values()}
    for step in ("Splits", "ReadRows", "Spread", "ScoreLogProb", "Count", "Write"):
        assert step in names
    assert pipeline.options.get_all_options()["runner"] == runner
