"""Loading an export in a local command: `tfgen.export.reader.Export` (the server's
signatures-only loader) against `tf.saved_model.load`, side by side, one run.

    python bench/local_load.py
    python bench/local_load.py --models digits_ddpm two_moons_nsf --rounds 7
    python bench/local_load.py --quick      # two models, one round (bench/run_all.py --quick)

For each shipped model (newest version), a fresh Python process imports TensorFlow and
tfgen, then times the load and the first `sample` call on 4 rows (where TensorFlow
instantiates the function): what `tfgen sample`, `score`, `classify`, `latent` and
`evaluate` pay once per command. The two loaders alternate for `--rounds` rounds so
drifting machine load hits both alike; medians of CPU and wall seconds, and
saved_model/Export ratios (> 1: Export is cheaper). Only ratios from one run are meant to
be compared (bench/common.py).
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, interleave, machine_line, median, short_reason  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADERS = ("export", "saved_model")

_CHILD = """
import json, sys, time
import numpy as np
from tfgen.backend import tf
from tfgen.export.reader import Export
loader, path = sys.argv[1], sys.argv[2]
wall, cpu = time.perf_counter(), time.process_time()
if loader == "export":
    export = Export(path)
    conditional = "condition" in export.describe("sample")["inputs"]
    sample = export.function("sample")
else:  # as the local commands called it: the restored function fills defaulted inputs
    loaded = tf.saved_model.load(path)
    specs = loaded.signatures["sample"].structured_input_signature[1]
    conditional = "condition" in specs
    sent = {"seed", "temperature"} | ({"condition"} if conditional else set())
    sample = loaded.signatures["sample"] if set(specs) == sent else loaded.sample
loaded_wall, loaded_cpu = time.perf_counter() - wall, time.process_time() - cpu
feeds = {"seed": tf.range(4, dtype=tf.int64), "temperature": tf.ones([4])}
if conditional:
    feeds["condition"] = tf.zeros([4], tf.int32)
sample(**feeds)["samples"].numpy()
print(json.dumps({"load_cpu": loaded_cpu, "load_wall": loaded_wall,
                  "total_cpu": time.process_time() - cpu, "total_wall": time.perf_counter() - wall}))
"""


def timed(loader, path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", _CHILD, loader, path], capture_output=True, text=True,
                          env=env, cwd=REPO)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    from tfgen.export.reader import resolve_version

    shipped = os.path.join(REPO, "saved_models")
    default = sorted(m for m in os.listdir(shipped) if os.path.isdir(os.path.join(shipped, m)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=default, help="shipped model names (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per loader")
    parser.add_argument("--quick", action="store_true", help="smoke run: two models, one round")
    parser.add_argument("--json", metavar="PATH", help="write the medians as JSON")
    args = parser.parse_args()
    if args.quick:
        args.models, args.rounds = ["two_moons_nsf", "digits_vae"], 1
    print(machine_line(), flush=True)
    rows, results = [], {}
    for name in args.models:
        path = resolve_version(os.path.join(shipped, name))
        runs = interleave({loader: (lambda loader=loader: timed(loader, path)) for loader in LOADERS}, args.rounds)
        failed = {loader: r for loader, r in runs.items() if not isinstance(r, list)}
        if failed:
            rows.append([name] + [f"{loader} failed: {short_reason(r)}" for loader, r in failed.items()][:1] + ["-"] * 4)
            continue
        med = {loader: {k: median([r[k] for r in runs[loader]]) for k in runs[loader][0]} for loader in LOADERS}
        results[name] = med
        new, old = med["export"], med["saved_model"]
        rows.append([name, f"{new['load_cpu']:.2f} / {old['load_cpu']:.2f}",
                     f"{old['load_cpu'] / new['load_cpu']:.1f}x",
                     f"{new['total_cpu']:.2f} / {old['total_cpu']:.2f}",
                     f"{old['total_cpu'] / new['total_cpu']:.2f}x",
                     f"{new['total_wall']:.2f} / {old['total_wall']:.2f}"])
        print(f"# {name}: load + first sample {new['total_wall']:.2f} s (Export) against "
              f"{old['total_wall']:.2f} s (tf.saved_model.load)", flush=True)
    print()
    print(format_table(["model", "load CPU s, Export / saved_model", "saved_model / Export",
                        "load + first sample CPU s", "saved_model / Export", "load + first sample wall s"], rows))
    print(f"\nMedians over {args.rounds} interleaved rounds, one fresh process per load.")
    print(machine_line())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
