"""Adam's update of one variable: Keras' ops against TensorFlow's fused `ResourceApplyAdam`,
by variable size, interleaved in one process: the measurement behind
`tfgen.training.optimizers.Adam`'s `fused_min_elements`.

Each variant updates 8 variables of one size per call of a `tf.function` (graph mode,
as `fit` runs it): Keras' Adam itself, and tfgen's Adam with every variable fused
(`fused_min_elements=0`). Wall and CPU microseconds per call are medians of `--rounds`
interleaved rounds of `--calls` calls; a ratio above 1 means the fused kernel is faster.

With `--configs`, also each named shipped config's training step as `tfgen train` runs
it (its model, optimizer settings, `jit_compile`, steps a call and the default `stop`
step guard) with tfgen's Adam against the same optimizer with nothing fused
(`fused_min_elements=None`, i.e. Keras' Adam), interleaved rounds of `common.timed_fit`.

    python bench/adam_update.py              # ~1 min
    python bench/adam_update.py --quick
    python bench/adam_update.py --configs digits_vae digits_ddpm digits_dcgan
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, interleave, machine_line, median, timed_fit  # noqa: E402

from tfgen.backend import keras, tf  # noqa: E402
from tfgen.training.optimizers import Adam  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SIZES = (1024, 4096, 16384, 32768, 65536, 262144)


def update_call(optimizer, elements, calls, variables=8):
    weights = [tf.Variable(tf.random.normal([elements], seed=i)) for i in range(variables)]
    gradients = [tf.random.normal([elements], seed=100 + i) for i in range(variables)]
    step = tf.function(lambda: optimizer.apply_gradients(zip(gradients, weights)))
    step()

    def run():
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            step()
        return (time.perf_counter() - wall) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6

    return run


def config_step(name, fused, steps):
    """A `timed_fit` run of shipped config `name`'s training step (see the module doc)."""
    from tfgen.data.datasets import load_dataset, training_batches
    from tfgen.training import faults, trainer
    from tfgen.training.config import load_config
    from tfgen.training.optimizers import build_optimizer

    config = load_config(os.path.join(REPO, "tf_configs", f"{name}.yaml"))
    t = config.training
    keras.utils.set_random_seed(t.seed)
    dataset = load_dataset(config.data.to_load_dict())
    model = trainer.build_model(config.model.class_name, trainer._model_config(config, dataset.spec))
    optimizers = {}
    for optimizer_name in model.optimizer_names:
        optimizers[optimizer_name] = build_optimizer(t.optimizer_settings(optimizer_name), total_steps=1000)
        if not fused:
            optimizers[optimizer_name].fused_min_elements = None
    model.compile(optimizer=optimizers, jit_compile=t.jit_compile, steps_per_execution=t.steps_per_execution)
    faults.install_step_guard(model, skip_bad_steps=False)
    batches = training_batches(dataset.splits["train"], dataset.spec, t.batch_size, seed=t.seed)
    model.fit(batches, epochs=1, steps_per_epoch=3 * t.steps_per_execution, verbose=0)  # traces
    return lambda: timed_fit(model, batches, steps * t.steps_per_execution)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls and rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--calls", type=int, help="calls per round (default 200)")
    parser.add_argument("--configs", nargs="+", metavar="NAME", default=[],
                        help="also time these tf_configs/ training steps, tfgen's Adam vs Keras'")
    parser.add_argument("--steps", type=int, default=20, help="--configs: timed calls of the train function per fit")
    args = parser.parse_args()
    rounds, calls = (2, 30) if args.quick else (5, 200)
    rounds, calls = args.rounds or rounds, args.calls or calls
    print(machine_line())
    rows = []
    for elements in SIZES:
        runs = {"keras": update_call(keras.optimizers.Adam(2e-4, beta_1=0.5), elements, calls),
                "fused": update_call(Adam(learning_rate=2e-4, beta_1=0.5, fused_min_elements=0), elements, calls)}
        got = interleave(runs, rounds)
        keras_wall, fused_wall = (median([w for w, _ in got[k]]) for k in ("keras", "fused"))
        keras_cpu, fused_cpu = (median([c for _, c in got[k]]) for k in ("keras", "fused"))
        wall_ratio = median([k / f for (k, _), (f, _) in zip(got["keras"], got["fused"])])
        cpu_ratio = median([k / f for (_, k), (_, f) in zip(got["keras"], got["fused"])])
        rows.append([f"{elements:,}", f"{keras_wall:.0f}", f"{fused_wall:.0f}", f"{wall_ratio:.2f}x",
                     f"{keras_cpu:.0f}", f"{fused_cpu:.0f}", f"{cpu_ratio:.2f}x"])
    print(f"\nAdam on 8 variables a call (medians of {rounds} interleaved rounds of {calls} calls; "
          f"ratio: Keras' time / the fused kernel's, > 1: fused faster; tfgen fuses from "
          f"{Adam().fused_min_elements:,} elements)")
    print(format_table(["elements a variable", "Keras wall us", "fused wall us", "ratio",
                        "Keras CPU us", "fused CPU us", "ratio"], rows))
    rows = []
    for name in args.configs:
        got = interleave({"tfgen": config_step(name, True, args.steps),
                          "keras": config_step(name, False, args.steps)}, rounds)
        rows.append([name, f"{median([r for r, _ in got['tfgen']]):.1f}", f"{median([r for r, _ in got['keras']]):.1f}",
                     f"{median([a / b for (a, _), (b, _) in zip(got['tfgen'], got['keras'])]):.2f}x",
                     f"{median([kc / tc for (_, tc), (_, kc) in zip(got['tfgen'], got['keras'])]):.2f}x"])
    if rows:
        print(f"\nTraining steps/s as `tfgen train` runs each config (medians of {rounds} interleaved rounds "
              f"of {args.steps} calls; ratios: tfgen's Adam over Keras', > 1: faster)")
        print(format_table(["config", "tfgen's Adam steps/s", "Keras' Adam steps/s", "steps/s ratio",
                            "CPU ratio"], rows))
    print(machine_line())


if __name__ == "__main__":
    main()
