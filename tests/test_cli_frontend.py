"""The `tfgen` command as a new user meets it: --version, `python -m tfgen`, fast
errors, and no TensorFlow start-up lines on the terminal. Real processes."""

import os
import subprocess
import sys

import numpy as np
import pytest

import tfgen

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFGEN_TF_LOGS")}
ENV["PYTHONPATH"] = REPO


def run(*args, cwd=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "tfgen", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_version_and_python_dash_m():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"tfgen {tfgen.__version__}"
    assert run("--help").stdout.startswith("usage: tfgen")


# Runs a command in a fresh interpreter and reports whether TensorFlow got imported.
_IMPORTS_TF = """
import sys
from tfgen.cli import main
code = main(sys.argv[1:])
print(code, "tensorflow" in sys.modules)
"""


@pytest.mark.parametrize("args", [
    ["score", "--model", "nope", "--input", "x.npy", "--out", "s.csv"],
    ["score", "--model", ".", "--input", "nope.npy", "--out", "s.csv"],
    ["score", "--server", "127.0.0.1:1", "--model", "m", "--input", "nope.csv", "--out", "s.csv"],
    ["sample", "--model", "nope", "--out", "x.png"],
    ["sample", "--model", "nope", "--out", "x.jpg"],
    ["serve", "--model_base_path", "nope"],
    ["train", "nope.yaml"],
    ["train", "x.npy"],
    ["train", "typo.yaml"],
    ["train", "choice.yaml"],
    ["train", "range.yaml"],
    ["export", "nope", "--out", "exported"],
    ["export", ".", "--out", "exported"],
])
def test_error_paths_answer_before_importing_tensorflow(tmp_path, args):
    """`tfgen score` took 6-25 s to say a file is missing: it imported TensorFlow first."""
    (tmp_path / "x.npy").write_bytes(b"")
    sections = "model: {class_name: RealNVP}\ndata: {name: two_moons}\n"
    (tmp_path / "typo.yaml").write_text(sections + "traning: {epochs: 1}\n")
    (tmp_path / "choice.yaml").write_text(sections + "faults: {nonfinite: maybe}\n")
    (tmp_path / "range.yaml").write_text(sections + "training: {epochs: 0}\n")
    proc = subprocess.run([sys.executable, "-c", _IMPORTS_TF, *args], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120)
    code, imported = proc.stdout.split()[-2:] if proc.stdout.strip() else ("?", "?")
    assert imported == "False", (proc.stdout, proc.stderr)
    assert code == "2", proc.stderr


def test_a_command_that_loads_tensorflow_prints_none_of_its_start_up_lines(tmp_path):
    """absl's pre-init notice, oneDNN/CUDA lines and cuInit errors reached the user even
    with TF_CPP_MIN_LOG_LEVEL=2; a real error still comes through, on one line."""
    import toy_savedmodels

    toy_savedmodels.write_model(str(tmp_path / "m"), 1, warmup=False)
    np.save(tmp_path / "x.npy", np.zeros([3, 2], np.float32))
    common = ["score", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "x.npy")]
    # Both commands at once (each is mostly TensorFlow's start): a good one, and one whose
    # error comes after TensorFlow is loaded, which still reaches the user on one line.
    good, bad = (subprocess.Popen([sys.executable, "-m", "tfgen", *common, *more], env=ENV, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for more in (["--out", str(tmp_path / "s.csv")],
                              ["--out", str(tmp_path / "t.csv"), "--condition-file", str(tmp_path / "x.npy")]))
    _, good_stderr = good.communicate(timeout=180)
    _, bad_stderr = bad.communicate(timeout=180)
    assert good.returncode == 0, good_stderr
    assert good_stderr == "", good_stderr
    assert bad.returncode == 2
    lines = bad_stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfgen score: error:"), bad_stderr


def test_a_native_message_over_several_lines_is_dropped_whole_and_nothing_else_is():
    """A collective's error names the lost task on the lines after its log line (seen
    after a preempted worker's last line); those lines went to the user on their own."""
    from tfgen.cli import drop_native_lines

    message = (b"E0000 00:00:1796236260.884004   12296 base_collective_executor.cc:252] "
               b"BaseCollectiveExecutor::StartAbort UNAVAILABLE: The following tasks are unhealthy:\n"
               b"/job:worker/replica:0/task:1\n"
               b"The tasks have crashed. Check the task logs for an earlier error.\n")
    assert drop_native_lines(message) == b""
    own = b"Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n"
    assert drop_native_lines(own) == own  # not TensorFlow's: kept, blank line included
    assert drop_native_lines(own + message) == own
