"""Exported `log_prob` vs the in-process model: rows/s at batch 1, 64 and 1024, side by side.

For each model (digits 8x8x1, trained for a few steps so data-initialized layers such as
Glow's ActNorm hold real values), the script exports it with `tfgen.export.export_model`
into a temporary directory, loads it back with `tf.saved_model.load(path)`, and times

- exported:   `loaded.signatures["log_prob"](x=...)` (the SavedModel's serving function),
- in-process: `model.log_prob` wrapped in a `tf.function` with the same batched input
  signature `[None, 8, 8, 1]` (so neither side retraces per batch size),

on the same digits rows. Both are warmed up at every batch size first; then the two
alternate (in-process, exported, in-process, ...) for `--rounds` rounds, each round a
fixed number of calls. The table gives median rows/s per side, the ratio
exported/in-process, and the largest |difference| between their log_prob outputs.

Usage:

    python bench/export_log_prob.py                      # RealNVP and Glow, ~5-20 min by load
    python bench/export_log_prob.py --quick              # smoke run
    python bench/export_log_prob.py --models RealNVP MAF --batch-sizes 1 64 1024 4096
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, interleave, machine_line, median, short_reason  # noqa: E402

# Representative digits configs (RealNVP as in tf_configs/digits_realnvp.yaml).
MODELS = {
    "RealNVP": {"num_levels": 2, "steps_per_level": 4, "hidden_units": 64, "num_hidden_layers": 2},
    "Glow": {"num_levels": 2, "steps_per_level": 4, "hidden_units": 64, "num_hidden_layers": 2},
    "NICE": {"num_levels": 2, "steps_per_level": 4, "hidden_units": 64, "num_hidden_layers": 2},
    "NeuralSplineFlow": {"num_levels": 2, "steps_per_level": 4, "hidden_units": 64, "num_hidden_layers": 2},
    "MAF": {"num_steps": 4, "hidden_units": 256, "num_hidden_layers": 2},
}
DEFAULT_MODELS = ["RealNVP", "Glow"]
QUICK_OVERRIDES = {"steps_per_level": 1, "num_steps": 2, "hidden_units": 32, "num_hidden_layers": 1}

# Calls per timed round at each batch size, so a round lasts roughly as long at each.
CALLS = {1: 100, 64: 10, 1024: 2}


def calls_for(batch_size, scale):
    base = CALLS.get(batch_size, max(1, round(2048 / batch_size)))
    return max(1, round(base * scale))


def train_briefly(class_name, kwargs, steps, seed=0):
    """A digits model after `steps` Adam steps (variables built, ActNorm initialized)."""
    from tfgen.backend import keras
    from tfgen.data import load_dataset, to_tf_dataset
    from tfgen.models.base import get_model_class

    data = load_dataset({"name": "digits", "seed": seed})
    keras.utils.set_random_seed(seed)
    model = get_model_class(class_name)(data_spec=data.spec.to_dict(), **kwargs)
    model.compile(keras.optimizers.Adam(1e-3))
    ds = to_tf_dataset(data.splits["train"], data.spec, 64, shuffle=True, seed=seed, repeat=True)
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    return model, data


def measure_model(class_name, kwargs, batch_sizes, rounds, call_scale, train_steps, workdir):
    from tfgen.backend import tf
    from tfgen.export.saved_model import export_model

    model, data = train_briefly(class_name, kwargs, train_steps)
    params = int(sum(v.shape.num_elements() for v in model.trainable_variables))
    start = time.perf_counter()
    path = export_model(model, os.path.join(workdir, class_name))
    export_s = time.perf_counter() - start
    exported = tf.saved_model.load(path).signatures["log_prob"]

    spec = data.spec
    # Traced like the export (autograph off), so the two sides run the same kind of graph.
    in_process = tf.function(lambda x: model.log_prob(x), autograph=False,
                             input_signature=[tf.TensorSpec([None, *spec.event_shape], tf.float32)])
    pool = np.concatenate([data.splits[s].x for s in ("test", "validation", "train")])
    rows = []
    for batch_size in batch_sizes:
        x = tf.constant(np.resize(pool, (batch_size, *spec.event_shape)).astype(np.float32))
        # Warm-up (tracing, first-call allocations) and a correctness check in one go.
        ours = in_process(x).numpy()
        theirs = exported(x=x)["log_prob"].numpy()
        max_diff = float(np.max(np.abs(ours - theirs)))
        calls = calls_for(batch_size, call_scale)

        def timed(fn):
            def run():
                start = time.perf_counter()
                for _ in range(calls):
                    out = fn()
                out.numpy()  # results on the host, as a caller would need them
                return calls * batch_size / (time.perf_counter() - start)
            return run

        results = interleave({
            "in_process": timed(lambda: in_process(x)),
            "exported": timed(lambda: exported(x=x)["log_prob"]),
        }, rounds)
        mine, saved = median(results["in_process"]), median(results["exported"])
        rows.append([class_name, f"{params:,}", batch_size, calls, f"{mine:,.0f}", f"{saved:,.0f}",
                     f"{saved / mine:.2f}x", f"{max_diff:.1e}"])
        print(f"# {class_name} batch {batch_size}: in-process {mine:,.0f} rows/s, exported {saved:,.0f} rows/s",
              flush=True)
    return rows, export_s


HEADERS = ["model", "params", "batch", "calls/round", "in-process rows/s", "exported rows/s",
           "exported/in-process", "max abs diff (nats)"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=sorted(MODELS),
                        help="flow classes to export (digits configs)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 64, 1024])
    parser.add_argument("--rounds", type=int, help="interleaved rounds per side (default 7, --quick 3)")
    parser.add_argument("--train-steps", type=int, default=5, help="Adam steps before exporting")
    parser.add_argument("--quick", action="store_true", help="smoke run: small models, fewer calls and rounds")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    call_scale = 0.5 if args.quick else 1.0

    print("# exported log_prob signature vs in-process tf.function(model.log_prob), digits 8x8x1")
    print(f"# start: {machine_line()}", flush=True)
    started = time.perf_counter()
    table, notes = [], []
    with tempfile.TemporaryDirectory(prefix="tfgen_bench_export_") as workdir:
        for class_name in args.models:
            kwargs = dict(MODELS[class_name])
            if args.quick:
                kwargs = {k: QUICK_OVERRIDES.get(k, v) for k, v in kwargs.items()}
            try:
                rows, export_s = measure_model(class_name, kwargs, args.batch_sizes, rounds, call_scale,
                                               args.train_steps, workdir)
            except Exception as error:  # noqa: BLE001  (a row says so; the other models still run)
                table.append([class_name, "", "", "", f"fails: {short_reason(error)}", "", "", ""])
                notes.append(f"{class_name} {kwargs} (failed)")
                continue
            table += rows
            notes.append(f"{class_name} {kwargs} (export_model took {export_s:.1f}s)")
    print(f"# end:   {machine_line()}  elapsed={time.perf_counter() - started:.0f}s")
    print()
    print(format_table(HEADERS, table))
    print()
    print(f"Medians over {rounds} interleaved rounds. Models: " + "; ".join(notes))


if __name__ == "__main__":
    main()
