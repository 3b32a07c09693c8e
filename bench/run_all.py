"""Runs every bench script in turn (what `make bench` calls); prints each one's tables.

Scripts run one after another, each in its own process, so they never compete with each
other for the (2) cores. A script that fails is reported and the rest still run; the
exit status is non-zero if any failed. `bench/serving.py` runs too when it exists.

Usage:

    python bench/run_all.py                 # every script's default run (~1 h on a loaded 2-core VM)
    python bench/run_all.py --quick         # each script's --quick smoke run, if it has one
    python bench/run_all.py --only flow_training export_log_prob
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import loadavg  # noqa: E402

# In order; "quick" says whether the script accepts --quick.
SCRIPTS = [
    ("baselines", False),
    ("flow_training", True),
    ("export_log_prob", True),
    ("audio_baselines", False),
    ("autoregressive_sampling", True),
    ("sample_quality", True),
    ("gan_training", True),
    ("adam_update", True),
    ("serving", True),  # added by the serving work; skipped while absent
    ("local_load", True),
    ("fault_tolerance", True),
]
NOISE = ("W0000 ", "I0000 ", "E0000 ", "WARNING: All log messages")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to scripts that take it")
    parser.add_argument("--only", nargs="+", choices=[name for name, _ in SCRIPTS], help="run only these")
    parser.add_argument("--verbose", action="store_true", help="keep TF's C++ log lines on stderr")
    args = parser.parse_args()

    failed = []
    for name, takes_quick in SCRIPTS:
        if args.only and name not in args.only:
            continue
        path = os.path.join(HERE, f"{name}.py")
        if not os.path.exists(path):
            print(f"## {name}: skipped ({os.path.relpath(path)} not present)\n", flush=True)
            continue
        command = [sys.executable, path] + (["--quick"] if args.quick and takes_quick else [])
        print(f"## {name}\n$ {' '.join([os.path.basename(sys.executable)] + command[1:])}", flush=True)
        print(f"# loadavg at start: {loadavg()}", flush=True)
        start = time.perf_counter()
        proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        stderr = proc.stderr.read()
        proc.wait()
        kept = [line for line in stderr.splitlines() if args.verbose or not line.startswith(NOISE)]
        if proc.returncode:
            failed.append(name)
            sys.stdout.write("\n".join(kept[-20:]) + "\n")
        print(f"# {name}: exit {proc.returncode} after {time.perf_counter() - start:.0f}s, "
              f"loadavg at end: {loadavg()}\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
