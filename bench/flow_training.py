"""Training throughput of every registered flow: `fit` in graph mode vs XLA, side by side.

For each flow class, two identically initialized models are compiled with the same
optimizer, one with `jit_compile=False` (a `tf.function` graph) and one with
`jit_compile=True` (XLA). Each fits a warm-up epoch first (tracing/compilation, timed
separately as "first fit"), then both alternate timed `fit` calls (graph, XLA, graph,
XLA, ...). In a timed call a callback takes the clock after the first step and after the
last, so iterator start-up is excluded; throughput is examples/s over the remaining
steps. The table gives the median over rounds per mode, the ratio of the medians
XLA/graph, and the median (and range) of the per-round ratios, each from a graph and an
XLA call timed back to back, which is steadier when the machine's load drifts. A flow
that fails to train in a mode gets "fails: <reason>" in its cells instead of a number.

Data: digits (8x8x1, 17 levels) for the coupling flows with multi-scale image
architectures, two_moons (2-D) for the autoregressive flows (MADE on flattened inputs);
`--configs` picks others. Each flow class runs in its own subprocess, so a crash in one
(e.g. inside XLA) is reported and the others still run.

Usage:

    python bench/flow_training.py                    # all flows; 43 min at loadavg ~9-14 on 2 cores
    python bench/flow_training.py --quick            # smoke run: smaller models, fewer rounds
    python bench/flow_training.py --json r.json      # also keep the raw per-round numbers
    python bench/flow_training.py --from-json r.json # re-print the table of a saved run
    python bench/flow_training.py --flows RealNVP Glow --rounds 7
    python bench/flow_training.py --configs RealNVP:two_moons MAF:digits
    python bench/flow_training.py --list             # the configs and exit

Most of the time goes to tracing and XLA compilation (the "first fit" columns), not to
the timed steps; pick flows with `--flows` for a shorter run.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, interleave, machine_line, median, short_reason  # noqa: E402

# Dataset configs (for load_dataset), batch sizes and timed steps per fit call (more
# steps for the fast 2-D data, so a timed call lasts well over the clock's noise).
DATASETS = {
    "digits": ({"name": "digits", "seed": 0}, 64, 10),
    "two_moons": ({"name": "two_moons", "num_samples": 20000, "seed": 0}, 256, 50),
}

# One representative config per class: (dataset, kwargs for images, kwargs for vectors).
_COUPLING_IMAGE = {"num_levels": 2, "steps_per_level": 2, "hidden_units": 64, "num_hidden_layers": 1}
_COUPLING_VECTOR = {"steps_per_level": 6, "hidden_units": 64, "num_hidden_layers": 2}
_AUTOREGRESSIVE = {"num_steps": 4, "hidden_units": 64, "num_hidden_layers": 2}
CONFIGS = {
    "RealNVP": ("digits", _COUPLING_IMAGE, _COUPLING_VECTOR),
    "NICE": ("digits", _COUPLING_IMAGE, _COUPLING_VECTOR),
    "Glow": ("digits", _COUPLING_IMAGE, _COUPLING_VECTOR),
    "NeuralSplineFlow": ("digits", dict(_COUPLING_IMAGE, num_bins=8), dict(_COUPLING_VECTOR, num_bins=8)),
    "MAF": ("two_moons", _AUTOREGRESSIVE, _AUTOREGRESSIVE),
    "IAF": ("two_moons", _AUTOREGRESSIVE, _AUTOREGRESSIVE),
    "AutoregressiveNeuralSplineFlow": ("two_moons", dict(_AUTOREGRESSIVE, num_bins=8), dict(_AUTOREGRESSIVE, num_bins=8)),
}
# A class without an entry (a flow added after this script) runs with its constructor
# defaults on two_moons, marked "(defaults)" in the table.
FALLBACK_DATASET = "two_moons"

# --quick: smaller models, fewer steps and rounds.
QUICK_OVERRIDES = {"steps_per_level": 1, "num_steps": 2, "hidden_units": 32, "num_hidden_layers": 1}

DEFAULTS = {"steps_scale": 1.0, "rounds": 5, "warmup_steps": 3}
QUICK = {"steps_scale": 0.5, "rounds": 3, "warmup_steps": 2}


def flow_classes():
    from tfgen.models.base import registered_models

    return {name: cls for name, cls in registered_models().items() if cls.family == "flow"}


def config_for(class_name, dataset=None, quick=False):
    """(dataset name, constructor kwargs without data_spec, note)."""
    if class_name in CONFIGS:
        default_dataset, image_kwargs, vector_kwargs = CONFIGS[class_name]
        dataset = dataset or default_dataset
        kwargs = dict(image_kwargs if dataset == "digits" else vector_kwargs)
        note = ""
    else:
        dataset, kwargs, note = dataset or FALLBACK_DATASET, {}, " (defaults)"
    if quick:
        kwargs = {k: QUICK_OVERRIDES.get(k, v) for k, v in kwargs.items()}
    return dataset, kwargs, note


# === One flow, in a worker process ===

def measure_flow(class_name, dataset_name, kwargs, steps, rounds, warmup_steps, seed=0):
    """Interleaved graph/XLA `fit` timings of one flow; a JSON-able dict."""
    from tfgen.backend import keras
    from tfgen.data import load_dataset, to_tf_dataset
    from tfgen.models.base import get_model_class

    data_config, batch_size, _ = DATASETS[dataset_name]
    data = load_dataset(data_config)
    ds = to_tf_dataset(data.splits["train"], data.spec, batch_size, shuffle=True, seed=seed,
                       repeat=True, drop_remainder=True)
    first_batch = next(iter(ds))

    class StepClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())

    result = {"class_name": class_name, "dataset": dataset_name, "batch_size": batch_size,
              "kwargs": kwargs, "steps": steps, "rounds": rounds}
    variants = {}
    for mode, jit in (("graph", False), ("xla", True)):
        try:
            keras.utils.set_random_seed(seed)
            model = get_model_class(class_name)(data_spec=data.spec.to_dict(), **kwargs)
            model(first_batch)  # variables exist before compile, identically for both modes
            result["params"] = int(sum(v.shape.num_elements() for v in model.trainable_variables))
            model.compile(keras.optimizers.Adam(1e-3), jit_compile=jit)
            start = time.perf_counter()
            history = model.fit(ds, epochs=1, steps_per_epoch=warmup_steps, verbose=0)
            result[f"{mode}_first_fit_s"] = time.perf_counter() - start
            loss = history.history["loss"][-1]
            if loss != loss:  # NaN
                raise FloatingPointError("loss is NaN after the warm-up epoch")
        except Exception as error:  # noqa: BLE001
            result[f"{mode}_error"] = short_reason(error)
            continue

        def run(model=model):
            clock = StepClock()
            model.fit(ds, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[clock])
            return steps * batch_size / (clock.times[-1] - clock.times[0])

        variants[mode] = run

    for mode, values in interleave(variants, rounds).items():
        if isinstance(values, Exception):
            result[f"{mode}_error"] = short_reason(values)
        else:
            result[f"{mode}_examples_per_s"] = values
    return result


def run_worker(spec, in_process):
    """Measures one flow; in a subprocess unless `in_process`, so crashes stay contained."""
    if in_process:
        return measure_flow(**spec)
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = [line for line in proc.stderr.splitlines() if line.strip()][-3:]
    reason = f"worker exited {proc.returncode}: " + (tail[-1].strip() if tail else "no output")
    return {"class_name": spec["class_name"], "dataset": spec["dataset_name"], "worker_error": reason[:90],
            "stderr_tail": tail}


# === Table ===

def cell(result, mode):
    if f"{mode}_error" in result:
        return f"fails: {result[f'{mode}_error']}"
    values = result.get(f"{mode}_examples_per_s")
    return f"{median(values):,.0f}" if values else "-"


def rows(results, notes):
    table = []
    for r in results:
        name = r["class_name"] + notes.get(r["class_name"], "")
        if "worker_error" in r:
            table.append([name, r["dataset"], "", "", "", f"fails: {r['worker_error']}", "", "", "", "", ""])
            continue
        graph, xla = r.get("graph_examples_per_s"), r.get("xla_examples_per_s")
        ratio = f"{median(xla) / median(graph):.2f}x" if graph and xla else "-"
        # Per-round pairs (graph and XLA timed back to back) cancel slow load drift.
        paired = sorted(x / g for g, x in zip(graph, xla)) if graph and xla else []
        paired = f"{median(paired):.2f}x ({paired[0]:.2f}-{paired[-1]:.2f})" if paired else "-"
        first = lambda mode: f"{r[f'{mode}_first_fit_s']:.1f}" if f"{mode}_first_fit_s" in r else "-"  # noqa: E731
        table.append([name, r["dataset"], r["batch_size"], r["steps"], f"{r.get('params', 0):,}", cell(r, "graph"),
                      cell(r, "xla"), ratio, paired, first("graph"), first("xla")])
    return table


HEADERS = ["flow", "data", "batch", "steps", "params", "graph ex/s", "XLA ex/s", "XLA/graph",
           "paired XLA/graph (min-max)",
           "graph first fit s", "XLA first fit s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", nargs="+", help="flow class names (default: every registered flow)")
    parser.add_argument("--configs", nargs="+", metavar="CLASS:DATASET",
                        help=f"explicit class:dataset pairs, datasets from {sorted(DATASETS)}")
    parser.add_argument("--quick", action="store_true", help="smoke run: small models, few steps and rounds")
    parser.add_argument("--steps", type=int, help="timed steps per fit call (default: 10 digits, 50 two_moons)")
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds per mode (default {DEFAULTS['rounds']})")
    parser.add_argument("--warmup-steps", type=int, help="steps of the untimed warm-up epoch")
    parser.add_argument("--in-process", action="store_true", help="no subprocess per flow (for debugging)")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--list", action="store_true", help="print the configs and exit")
    parser.add_argument("--from-json", help="re-print the table of a --json file and exit")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print("RESULT " + json.dumps(measure_flow(**json.loads(args.worker))), flush=True)
        return

    if args.from_json:
        with open(args.from_json) as f:
            print(format_table(HEADERS, rows(json.load(f), {}), align=["l", "l"] + ["r"] * 9))
        return

    budget = QUICK if args.quick else DEFAULTS
    rounds = args.rounds or budget["rounds"]
    warmup_steps = args.warmup_steps or budget["warmup_steps"]

    available = flow_classes()
    if args.configs:
        pairs = [tuple(c.split(":", 1)) if ":" in c else (c, None) for c in args.configs]
    else:
        pairs = [(name, None) for name in (args.flows or sorted(available, key=_order))]
    for name, dataset in pairs:
        if name not in available:
            parser.error(f"unknown flow {name!r}; registered flows: {sorted(available)}")
        if dataset is not None and dataset not in DATASETS:
            parser.error(f"unknown dataset {dataset!r}; choose from {sorted(DATASETS)}")

    specs, notes = [], {}
    for name, dataset in pairs:
        dataset, kwargs, note = config_for(name, dataset, args.quick)
        notes[name] = note
        steps = args.steps or max(2, round(DATASETS[dataset][2] * budget["steps_scale"]))
        specs.append({"class_name": name, "dataset_name": dataset, "kwargs": kwargs, "steps": steps,
                      "rounds": rounds, "warmup_steps": warmup_steps})
    if args.list:
        for spec in specs:
            print(f"{spec['class_name']:<32}{spec['dataset_name']:<11}{spec['kwargs']}")
        return

    print("# flow training throughput: fit, graph (jit_compile=False) vs XLA (jit_compile=True)")
    print(f"# {len(specs)} flows, {rounds} interleaved rounds per mode, warm-up {warmup_steps} steps"
          f"{', --quick' if args.quick else ''}")
    print(f"# start: {machine_line()}", flush=True)
    started = time.perf_counter()
    results = []
    for spec in specs:
        result = run_worker(spec, args.in_process)
        results.append(result)
        print(f"# {spec['class_name']}: done at {time.perf_counter() - started:.0f}s "
              f"({json.dumps({k: v for k, v in result.items() if k.endswith(('_error', '_per_s'))})})", flush=True)
    print(f"# end:   {machine_line()}  elapsed={time.perf_counter() - started:.0f}s")
    print()
    print(format_table(HEADERS, rows(results, notes), align=["l", "l"] + ["r"] * 9))
    print()
    print("Configs: " + "; ".join(f"{s['class_name']} {s['kwargs']}" for s in specs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def _order(name):
    """Known configs first, in CONFIGS order, then any newer flows by name."""
    names = list(CONFIGS)
    return (names.index(name), name) if name in names else (len(names), name)


if __name__ == "__main__":
    main()
