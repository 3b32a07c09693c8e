"""What the non-finite step guard costs: training steps/s with and without it, side by side.

For each shipped config named (default: a flow, a VAE and a GAN), two identically
initialized models are built and compiled exactly as `tfgen train` builds them (the
config's model, optimizers, schedule and `jit_compile`); `tfgen.training.faults.
install_step_guard` goes into one of them. Both fit a warm-up call first (tracing), then
alternate timed `fit` calls of `--steps` steps (guarded, unguarded, guarded, ...). A
callback takes the clock after every step; a call's rate is 1 / its median step time
(iterator start-up and other processes' bursts excluded). The table gives the median
rate over rounds and the median (and range) of the per-round ratios guarded/unguarded,
each from two calls timed back to back; then the same for CPU milliseconds per step
(`time.process_time`, every thread of the process), which other processes' load
hardly moves: on the shared 2-core machine the steadier of the two figures.

Usage:

    python bench/step_guard.py                        # NSF, VAE, WGAN-GP configs, ~5 min
    python bench/step_guard.py --steps 50 --rounds 3
    python bench/step_guard.py --configs tf_configs/digits_dcgan.yaml
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, machine_line, median, timed_fit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ["tf_configs/two_moons_nsf.yaml", "tf_configs/digits_vae.yaml", "tf_configs/eight_gaussians_wgan_gp.yaml"]


def build(config, dataset, guarded, total_steps):
    from tfgen.backend import keras
    from tfgen.training import faults
    from tfgen.training.optimizers import build_optimizer
    from tfgen.training.trainer import build_model

    keras.utils.set_random_seed(config.training.seed)
    model = build_model(config.model.class_name, {**config.model.config, "data_spec": dataset.spec.to_dict()})
    t = config.training
    model.compile(optimizer={name: build_optimizer(t.optimizer_settings(name), total_steps)
                             for name in model.optimizer_names}, jit_compile=t.jit_compile)
    if guarded:
        faults.install_step_guard(model, skip_bad_steps=config.faults.nonfinite == "skip")
    return model


def measure(config_path, steps, rounds):
    from tfgen.data.datasets import load_dataset, to_tf_dataset
    from tfgen.training.config import load_config

    config = load_config(os.path.join(ROOT, config_path))
    dataset = load_dataset(config.data.to_load_dict())
    t = config.training
    train_ds = to_tf_dataset(dataset.splits["train"], dataset.spec, t.batch_size, shuffle=True, seed=t.seed,
                             repeat=True, drop_remainder=True)
    models = {"guarded": build(config, dataset, True, steps * (rounds + 1)),
              "unguarded": build(config, dataset, False, steps * (rounds + 1))}

    for model in models.values():
        model.fit(train_ds, epochs=1, steps_per_epoch=3, verbose=0)  # tracing
    runs = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            runs[name].append(timed_fit(model, train_ds, steps))
    rates = {name: [wall for wall, _ in values] for name, values in runs.items()}
    cpu = {name: [seconds for _, seconds in values] for name, values in runs.items()}
    ratios = [g / u for g, u in zip(rates["guarded"], rates["unguarded"])]
    cpu_ratios = [g / u for g, u in zip(cpu["guarded"], cpu["unguarded"])]
    return {"config": config_path, "class": config.model.class_name, "jit": t.jit_compile,
            "guarded": median(rates["guarded"]), "unguarded": median(rates["unguarded"]),
            "ratio": median(ratios), "ratio_range": (min(ratios), max(ratios)),
            "cpu_guarded": median(cpu["guarded"]), "cpu_unguarded": median(cpu["unguarded"]),
            "cpu_ratio": median(cpu_ratios), "cpu_ratio_range": (min(cpu_ratios), max(cpu_ratios))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=CONFIGS, help="tf_configs to measure (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per fit call (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=9, help="timed calls per variant (default: %(default)s)")
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    rows = []
    for path in args.configs:
        r = measure(path, args.steps, args.rounds)
        rows.append([os.path.basename(r["config"]), r["class"], "xla" if r["jit"] else "graph",
                     f"{r['guarded']:.1f}", f"{r['unguarded']:.1f}", f"{r['ratio']:.2f}x",
                     f"{r['ratio_range'][0]:.2f}-{r['ratio_range'][1]:.2f}",
                     f"{r['cpu_guarded']:.2f}", f"{r['cpu_unguarded']:.2f}", f"{r['cpu_ratio']:.2f}x",
                     f"{r['cpu_ratio_range'][0]:.2f}-{r['cpu_ratio_range'][1]:.2f}"])
        print(rows[-1], flush=True)
    print(format_table(["config", "model", "mode", "guarded steps/s", "unguarded steps/s", "steps/s ratio",
                        "range", "guarded CPU ms/step", "unguarded CPU ms/step", "CPU ratio", "range"],
                       rows, align=["l", "l", "l"] + ["r"] * 8))
    print(machine_line(), flush=True)


if __name__ == "__main__":
    main()
