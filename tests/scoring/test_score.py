"""`tfgen score`: local and --server give the same numbers, and keep every row."""

import csv
import os

import numpy as np
import pytest
import toy_savedmodels

from tfgen.cli import main
from tfgen.export.reader import call_signature


@pytest.fixture(scope="module")
def served(scoring_exports):
    """(grpc address, {name: base path}): 2-D vectors, and conditional 4x4x1 images."""
    from tfgen.serving.model_manager import ModelConfig
    from tfgen.serving.server import ServerOptions, start_in_thread

    bases = scoring_exports
    srv = start_in_thread(ServerOptions(
        models=[ModelConfig(n, p) for n, p in bases.items()], port=0, rest_api_port=None,
        file_system_poll_wait_seconds=0))
    yield srv.grpc_address, bases
    srv.stop()


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def score_both(served, name, tmp_path, *args):
    address, bases = served
    local, remote = tmp_path / "local.csv", tmp_path / "server.csv"
    assert main(["score", "--model", bases[name], "--out", str(local), *args]) == 0
    assert main(["score", "--server", address, "--model", name, "--out", str(remote), *args]) == 0
    return read(local), read(remote)


def test_npy_every_row_kept_nan_flagged_local_equals_server(served, tmp_path):
    x = np.random.default_rng(0).normal(size=[23, 2]).astype(np.float32)
    x[5, 1] = np.nan
    x[17, 0] = np.inf
    np.save(tmp_path / "x.npy", x)
    local, remote = score_both(served, "vec", tmp_path, "--input", str(tmp_path / "x.npy"),
                               "--batch-size", "4")
    assert local == remote
    assert [int(r["index"]) for r in local] == list(range(23))
    for i in (5, 17):
        assert local[i]["error"].startswith("non-finite input")
        assert local[i]["is_finite"] == "false" and local[i]["log_prob"] == ""
    good = [i for i in range(23) if i not in (5, 17)]
    expected = call_signature(os.path.join(served[1]["vec"], "1"), "log_prob", {"x": x[good]})
    got = np.array([float(local[i]["log_prob"]) for i in good], np.float32)
    np.testing.assert_allclose(got, expected["log_prob"], rtol=1e-5, atol=1e-5)
    assert all(local[i]["is_finite"] == "true" and local[i]["error"] == "" for i in good)


def test_csv_with_condition_column_and_bad_rows(served, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 17, size=[9, 16]).astype(np.float32)
    condition = np.arange(9) % 3
    lines = ["label," + ",".join(f"p{i}" for i in range(16))]
    for c, row in zip(condition, x):
        lines.append(f"{c}," + ",".join(f"{v:g}" for v in row))
    lines[3] = lines[3].rsplit(",", 1)[0]  # row 2: 15 values
    lines[5] = lines[5].replace(",", ",abc,", 1).rsplit(",", 1)[0]  # row 4: not a number
    lines[7] = "1.5" + lines[7][1:]  # row 6: condition not an integer
    lines[8] = lines[8][:2] + "nan" + lines[8][lines[8].index(",", 2):]  # row 7: NaN
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    local, remote = score_both(served, "img", tmp_path, "--input", str(tmp_path / "x.csv"),
                               "--condition-column", "label", "--batch-size", "3")
    assert local == remote
    assert [int(r["index"]) for r in local] == list(range(9))
    errors = {i: r["error"] for i, r in enumerate(local) if r["error"]}
    assert set(errors) == {2, 4, 6, 7}, errors
    assert "expected 16 values" in errors[2] and "not a number" in errors[4]
    assert "not an integer" in errors[6] and "non-finite" in errors[7]
    good = [0, 1, 3, 5, 8]
    expected = call_signature(
        os.path.join(served[1]["img"], "1"), "log_prob",
        {"x": x[good].reshape(-1, 4, 4, 1), "condition": condition[good].astype(np.int32)})
    np.testing.assert_allclose([float(local[i]["bits_per_dim"]) for i in good],
                               expected["bits_per_dim"], rtol=1e-5)


def test_npz_and_condition_file(served, tmp_path):
    x = np.random.default_rng(2).integers(0, 17, size=[7, 4, 4, 1]).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x, condition=np.arange(7) % 3)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "c.txt").write_text("\n".join(str(i % 3) for i in range(7)) + "\n")
    a, b = score_both(served, "img", tmp_path, "--input", str(tmp_path / "x.npz"))
    c = tmp_path / "condition_file.csv"  # the condition file is read before either scorer
    assert main(["score", "--model", served[1]["img"], "--input", str(tmp_path / "x.npy"),
                 "--condition-file", str(tmp_path / "c.txt"), "--out", str(c)]) == 0
    assert a == b == read(c) and len(a) == 7 and not any(r["error"] for r in a)


def test_a_row_the_model_refuses_costs_only_itself(served, tmp_path):
    x = np.random.default_rng(3).integers(0, 17, size=[6, 4, 4, 1]).astype(np.float32)
    condition = np.array([0, 1, 7, 2, 0, 1])  # 7: the model's assertion fails
    np.savez(tmp_path / "x.npz", x=x, label=condition)
    local, remote = score_both(served, "img", tmp_path, "--input", str(tmp_path / "x.npz"),
                               "--condition-column", "label", "--batch-size", "4")
    for rows in (local, remote):
        assert len(rows) == 6 and [bool(r["error"]) for r in rows] == [0, 0, 1, 0, 0, 0]
        assert "condition out of range" in rows[2]["error"] and rows[2]["is_finite"] == "false"
    assert [r["log_prob"] for r in local] == [r["log_prob"] for r in remote]


@pytest.mark.parametrize("args, message", [
    (["--input", "{x}", "--model", "{img}"], "conditional: give the classes"),
    (["--input", "{x}", "--model", "{vec}", "--condition-file", "{x}"], "unconditional"),
    (["--input", "{missing}", "--model", "{vec}"], "no input file"),
    (["--input", "{x}", "--server", "{address}", "--model", "nope"], "NOT_FOUND"),
])
def test_bad_input_is_one_line(served, tmp_path, capsys, args, message):
    address, bases = served
    np.save(tmp_path / "x.npy", np.zeros([2, 2], np.float32))
    paths = dict(bases, x=str(tmp_path / "x.npy"), missing=str(tmp_path / "missing.npy"),
                 address=address)
    out = tmp_path / "out.csv"
    assert main(["score", *[a.format(**paths) for a in args], "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_a_run_that_scores_no_row_exits_1(served, tmp_path, capsys):
    """Every row unreadable: the CSV keeps each row with its error, and the command fails."""
    (tmp_path / "bad.csv").write_text("1,2,3\nnan,0\n")
    out = tmp_path / "out.csv"
    assert main(["score", "--model", served[1]["vec"], "--input", str(tmp_path / "bad.csv"),
                 "--out", str(out)]) == 1
    assert len(read(out)) == 2 and all(r["error"] for r in read(out))
    captured = capsys.readouterr()
    assert "2 rows: 0 scored, 2 not scored" in captured.out
    assert "none of the 2 rows could be scored" in captured.err


def test_server_scoring_splits_batches_to_the_server_s_limit(tmp_path):
    """A 256-row batch against a server taking 100 rows per request is split, not
    retried row by row (114 rows/s before)."""
    from tfgen.serving.model_manager import ModelConfig
    from tfgen.serving.server import ServerOptions, start_in_thread
    from tfgen.serving.signatures import InputLimits

    toy_savedmodels.write_model(str(tmp_path / "vec"), 1, warmup=False)
    srv = start_in_thread(ServerOptions(
        models=[ModelConfig("vec", str(tmp_path / "vec"))], port=0, rest_api_port=None,
        file_system_poll_wait_seconds=0, limits=InputLimits(max_rows=100)))
    try:
        x = np.random.default_rng(3).normal(size=[600, 2]).astype(np.float32)
        np.save(tmp_path / "x.npy", x)
        from tfgen.scoring.score import ServerScorer

        calls = []
        scorer = ServerScorer(srv.grpc_address, "vec")
        original = scorer.client.predict_response
        scorer.client.predict_response = lambda *a, **k: calls.append(1) or original(*a, **k)
        from tfgen.scoring.score import score_file

        summary = score_file(scorer, str(tmp_path / "x.npy"), str(tmp_path / "out.csv"), 256)
        scorer.close()
        assert summary.scored == 600 and summary.errors == 0
        # 3 batches of 256: the first is refused once, then every batch goes in 100s.
        assert len(calls) <= 1 + 7, len(calls)
        np.testing.assert_allclose([float(r["log_prob"]) for r in read(tmp_path / "out.csv")],
                                   toy_savedmodels.log_prob_np(x)[0], rtol=1e-5)
    finally:
        srv.stop()


def test_a_batch_retried_row_by_row_is_said_so(served, tmp_path, capsys):
    """One row the model refuses (a class out of range) costs only itself, and the
    summary says its batch was retried row by row rather than falling back silently."""
    x = np.zeros([4, 4, 4, 1], np.float32)
    np.savez(tmp_path / "x.npz", x=x, condition=np.array([0, 1, 7, 2]))
    out = tmp_path / "out.csv"
    assert main(["score", "--server", served[0], "--model", "img", "--input",
                 str(tmp_path / "x.npz"), "--out", str(out)]) == 0
    rows = read(out)
    assert [bool(r["error"]) for r in rows] == [False, False, True, False]
    assert "1 batch(es) refused whole and scored row by row" in capsys.readouterr().out


@pytest.mark.parametrize("rows, seconds, expected", [(5, 10.0, "0.5 rows/s"), (14, 15.0, "0.93 rows/s"),
                                                     (1000, 4.0, "250 rows/s"), (0, 0.0, "0 rows/s")])
def test_the_summary_s_rate_keeps_slow_models_readable(rows, seconds, expected):
    from tfgen.scoring.score import rate_text

    assert rate_text(rows, seconds) == expected
