"""Adam's update of one variable: Keras' ops against TensorFlow's fused `ResourceApplyAdam`,
by variable size, interleaved in one process: the measurement behind
`tfgen.training.optimizers.Adam`'s `fused_min_elements`.

Each variant updates 8 variables of one size per call of a `tf.function` (graph mode,
as `fit` runs it): Keras' Adam itself, and tfgen's Adam with every variable fused
(`fused_min_elements=0`). Wall and CPU microseconds per call are medians of `--rounds`
interleaved rounds of `--calls` calls; a ratio above 1 means the fused kernel is faster.

    python bench/adam_update.py              # ~1 min
    python bench/adam_update.py --quick
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, interleave, machine_line, median  # noqa: E402

from tfgen.backend import keras, tf  # noqa: E402
from tfgen.training.optimizers import Adam  # noqa: E402

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls and rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--calls", type=int, help="calls per round (default 200)")
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
    print(machine_line())


if __name__ == "__main__":
    main()
