"""The `tfgen` command as a new user meets it: --version, `python -m tfgen`, fast
errors, and no TensorFlow start-up lines on the terminal. Real processes."""

import os
import subprocess
import sys
import time

import numpy as np

import tfgen

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFGEN_TF_LOGS")}
ENV["PYTHONPATH"] = REPO


def run(*args, cwd=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "tfgen", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_version_and_python_dash_m():
    start = time.monotonic()
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"tfgen {tfgen.__version__}"
    assert time.monotonic() - start < 5  # no TensorFlow import for --version
    assert run("--help").stdout.startswith("usage: tfgen")


def test_a_command_that_loads_tensorflow_prints_none_of_its_start_up_lines(tmp_path):
    """absl's pre-init notice, oneDNN/CUDA lines and cuInit errors reached the user even
    with TF_CPP_MIN_LOG_LEVEL=2; a real error still comes through, on one line."""
    import toy_savedmodels

    toy_savedmodels.write_model(str(tmp_path / "m"), 1, warmup=False)
    np.save(tmp_path / "x.npy", np.zeros([3, 2], np.float32))
    proc = run("score", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "x.npy"),
               "--out", str(tmp_path / "s.csv"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    # An error after TensorFlow is loaded still reaches the user, on one line.
    proc = run("score", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "x.npy"),
               "--out", str(tmp_path / "s.csv"), "--condition-file", str(tmp_path / "x.npy"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfgen score: error:"), proc.stderr
