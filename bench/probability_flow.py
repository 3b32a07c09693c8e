"""Probability-flow ODE likelihoods (`tfgen.models.diffusion.ode`): solver cost and error
on the shipped 2-D score model, and the ODE bits/dim of the shipped digits DDPM next to
its variational bound and the other shipped digits models. Prints tables, writes nothing.

1. `saved_models/checkerboard_score`, rebuilt in-process from its export (config and
   weights) so the ODE settings can vary: mean log_prob of `--rows` test rows and the
   largest per-row difference from a reference (Dormand-Prince at rtol = atol = 1e-6,
   exact divergence), with ms per row, for RK4 at several step counts, Dormand-Prince at
   two tolerances and Hutchinson's estimator.
2. `saved_models/digits_ddpm` (or `--ddpm PATH`): the VP SDE's ODE on the DDPM's EMA epsilon
   network, log p(x | y) of the test digits, uniformly dequantized on the levels'
   grid (`x -> (x + u - 1/2) * 2 / (L - 1) - 1`, the DDPM's own scaling, so
   log P(x) >= E_u log p(y) + D log(2 / (L - 1))), one draw per row, integrated from
   t0 = 1/T (step 1, where the network was trained) to 1; Hutchinson's divergence
   (D = 64). Beside it the bound (the export's log_prob signature) and the shipped
   flows', VAEs' and PixelCNN's held-out bits/dim from their tfgen.json.

Usage:

    python bench/probability_flow.py                 # both parts
    python bench/probability_flow.py --quick         # fewer rows and variants
"""

import argparse
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import machine_line  # noqa: E402

from tfgen.backend import tf  # noqa: E402
from tfgen.data.datasets import load_dataset  # noqa: E402
from tfgen.export.reader import call_signature, read_metadata, resolve_version  # noqa: E402
from tfgen.metrics.bits import bits_per_dim  # noqa: E402
from tfgen.models.base import get_model_class  # noqa: E402
from tfgen.models.diffusion import ode  # noqa: E402
from tfgen.training.init_from import restore_weights  # noqa: E402

REPO = os.path.dirname(HERE)
OTHERS = ["digits_realnvp", "digits_conditional_glow", "digits_vae", "digits_conditional_vae",
          "digits_conditional_pixel_cnn"]


def rebuilt(base):
    """The export under `base` (a base path or version directory), rebuilt from its
    config and weights."""
    path = resolve_version(base)
    meta = read_metadata(path)
    model = get_model_class(meta["class_name"]).from_config(meta["config"])
    restore_weights(model, path)
    return model, path, meta


def timed(fn, x):
    fn(x)  # traces
    start = time.perf_counter()
    value = fn(x).numpy()
    return value, (time.perf_counter() - start) / len(x) * 1e3


def solvers(rows, quick):
    model, _, meta = rebuilt(os.path.join(REPO, "saved_models", "checkerboard_score"))
    x = load_dataset(meta["training_data"]["data"]).splits["test"].x[:rows].astype(np.float32)

    def variant(solver, steps=64, tolerance=1e-5, divergence="exact"):
        model.ode_solver, model.ode_steps, model.ode_divergence = solver, steps, divergence
        model.ode_rtol = model.ode_atol = tolerance
        return tf.function(model.log_prob, autograph=False)

    reference, reference_ms = timed(variant("dopri5", tolerance=1e-6), x)
    names = [("rk4", 16), ("rk4", 32), ("rk4", 64), ("rk4", 128), ("dopri5", 1e-3), ("dopri5", 1e-5),
             ("rk4", 64, "hutchinson")]
    if quick:
        names = [("rk4", 16), ("rk4", 64), ("dopri5", 1e-3)]
    print(f"\n1. saved_models/checkerboard_score, {rows} test rows; reference dopri5 rtol=atol=1e-6 (exact "
          f"divergence): mean log_prob {reference.mean():.4f} nats, {reference_ms:.1f} ms/row")
    print(f"{'variant':<28} {'mean log_prob':>13} {'max |diff|':>11} {'ms/row':>8} {'x reference':>11}")
    for name in names:
        solver, setting, *divergence = name
        kwargs = {"steps": setting} if solver == "rk4" else {"tolerance": setting}
        value, ms = timed(variant(solver, divergence=divergence[0] if divergence else "exact", **kwargs), x)
        label = f"{solver} {'steps' if solver == 'rk4' else 'tol'}={setting}" + (f" {divergence[0]}" if divergence else "")
        print(f"{label:<28} {value.mean():>13.4f} {np.abs(value - reference).max():>11.2e} {ms:>8.2f} "
              f"{ms / reference_ms:>10.2f}x")


def ddpm_ode_log_prob(model, x, condition, steps, divergence):
    """log P(x) lower bound of discrete x through the VP probability-flow ODE, one
    dequantization draw per row (module docstring)."""
    spec = model.data_spec
    sde = ode.VariancePreserving(model._betas)
    network = model._sampling_denoiser
    total = model.timesteps
    event_shape = list(spec.event_shape)
    num_dims = spec.num_dims
    bin_width = 2.0 / (spec.levels - 1)
    noise = tf.random.stateless_uniform(tf.shape(x), seed=(2021, 1))
    y = tf.reshape((x + noise - 0.5) * bin_width - 1.0, [-1, num_dims])

    def score(y, t):
        # Network step index i holds alpha_bar[i], the ODE's t = (i + 1) / T.
        eps = network(tf.reshape(y, [-1, *event_shape]), t * total - 1.0, condition)
        return -tf.reshape(eps, [-1, num_dims]) / sde.sigma(t)[:, None]

    log_prob = ode.probability_flow_log_prob(y, score, sde, t0=1.0 / total, steps=steps, divergence=divergence)
    return log_prob + num_dims * math.log(bin_width)


def ddpm(base, steps, rows, batch):
    if not os.path.isdir(base):
        print(f"\n2. {base} does not exist: skipped")
        return
    model, path, meta = rebuilt(base)
    test = load_dataset(meta["training_data"]["data"]).splits["test"]
    x, y = test.x[:rows].astype(np.float32), None if test.y is None else test.y[:rows].astype(np.int32)
    function = tf.function(lambda x, c: ddpm_ode_log_prob(model, x, c, steps, "hutchinson"), autograph=False)
    start, values = time.perf_counter(), []
    for i in range(0, len(x), batch):
        values.append(function(x[i:i + batch], None if y is None else y[i:i + batch]).numpy())
    seconds = time.perf_counter() - start
    ode_bits = bits_per_dim(np.concatenate(values), model.data_spec.num_dims)
    inputs = {"x": x} if y is None else {"x": x, "condition": y}
    start = time.perf_counter()
    bound = call_signature(path, "log_prob", inputs)["bits_per_dim"]
    bound_seconds = time.perf_counter() - start
    print(f"\n2. digits bits/dim on {len(x)} test digits (lower is better)")
    print(f"{'model':<34} {'bits/dim':>9} {'+- s.e.':>8}  what")
    print(f"{'digits_ddpm ODE (rk4 ' + str(steps) + ', Hutchinson)':<34} {ode_bits.mean():>9.3f} "
          f"{ode_bits.std(ddof=1) / math.sqrt(len(x)):>8.3f}  probability-flow estimate, 1 dequantization "
          f"draw; {seconds / len(x) * 1e3:.0f} ms/row")
    print(f"{'digits_ddpm bound':<34} {bound.mean():>9.3f} {bound.std(ddof=1) / math.sqrt(len(x)):>8.3f}  "
          f"variational bound (log_prob signature); {bound_seconds / len(x) * 1e3:.0f} ms/row")
    for name in OTHERS:
        base = os.path.join(REPO, "saved_models", name)
        if os.path.isdir(base):
            metrics = read_metadata(resolve_version(base))["metrics"]
            print(f"{name:<34} {metrics['bits_per_dim']:>9.3f} {metrics.get('bits_per_dim_stderr', float('nan')):>8.3f}"
                  f"  tfgen.json held-out test figure")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500, help="checkerboard test rows (default 500)")
    parser.add_argument("--ddpm-rows", type=int, default=None, help="digits test rows (default: all)")
    parser.add_argument("--ddpm-steps", type=int, default=64, help="RK4 steps of the DDPM ODE (default 64)")
    parser.add_argument("--ddpm", default=os.path.join(REPO, "saved_models", "digits_ddpm"),
                        help="the DDPM export (default saved_models/digits_ddpm)")
    parser.add_argument("--part", type=int, choices=(1, 2), help="run only part 1 (solvers) or 2 (DDPM)")
    parser.add_argument("--quick", action="store_true", help="fewer rows and variants")
    args = parser.parse_args()
    print(machine_line())
    if args.part != 2:
        solvers(100 if args.quick else args.rows, args.quick)
    if args.part != 1:
        ddpm(args.ddpm, 16 if args.quick else args.ddpm_steps, 32 if args.quick else args.ddpm_rows, 64)
    print(machine_line())


if __name__ == "__main__":
    main()
