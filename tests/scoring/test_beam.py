"""`tfgen score --runner DirectRunner`: Beam's RunInference with tfgen's signature handler
gives the local path's records, row for row."""

import numpy as np
import pytest
import toy_savedmodels

from tfgen.cli import main
from tfgen.scoring.outputs import read_records

pytest.importorskip("apache_beam", reason="the beam extra: pip install 'tfgen[beam]'")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("beam")
    toy_savedmodels.write_model(str(root / "img"), 1, conditional=True, event_shape=(4, 4, 1), warmup=False)
    x = np.random.default_rng(0).integers(0, 17, size=[37, 4, 4, 1]).astype(np.float32)
    x[5, 0, 0, 0] = np.nan
    condition = np.arange(37) % 3
    condition[11] = 7  # the model refuses this row's class
    np.savez(root / "x.npz", x=x, condition=condition)
    return root


def _same_as_local(inputs, tmp_path, *beam_args):
    args = ["score", "--model", str(inputs / "img"), "--input", str(inputs / "x.npz"), "--batch-size", "8"]
    assert main([*args, "--out", str(tmp_path / "local.jsonl")]) == 0
    assert main([*args, "--out", str(tmp_path / "beam.parquet"), *beam_args]) == 0
    local, beam = read_records(str(tmp_path / "local.jsonl")), read_records(str(tmp_path / "beam.parquet"))
    assert beam == local and [r["index"] for r in beam] == list(range(37))
    assert "non-finite" in beam[5]["error"] and "condition out of range" in beam[11]["error"]
    assert sum(r["error"] is None for r in beam) == 35


def test_direct_runner_gives_the_local_records_row_for_row(inputs, tmp_path):
    _same_as_local(inputs, tmp_path, "--runner", "DirectRunner")


@pytest.mark.slow
def test_direct_runner_multi_processing_with_two_workers(inputs, tmp_path):
    _same_as_local(inputs, tmp_path, "--runner", "DirectRunner", "--pipeline-option=--direct_num_workers=2",
                   "--pipeline-option=--direct_running_mode=multi_processing")
