"""Records what the shipped SavedModels answer on fixed inputs, as a reference.

Run once, at commit fba1226 (before the exports were re-traced to shrink their graphs):

    .venv/bin/python tests/reference/record_shipped_reference.py

It writes `tests/reference/shipped_reference.npz`; `tests/test_saved_models.py` checks that
every shipped export still answers the same to float32 rounding. Re-run it only when
the shipped weights change on purpose.
"""

import os

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = ("digits_realnvp", "digits_conditional_glow", "two_moons_nsf")
ROWS = 6
#: How close an export's answers must be to the recorded ones: float32 rounding across
#: CPUs, whose kernels (AVX2 here; the machine that recorded them had other ones) sum in other orders
#: (seen: 1e-5 absolute on log_prob, 6e-6 on a latent).
TOLERANCE = dict(rtol=1e-4, atol=1e-4)


def reference_inputs(name):
    """Fixed inputs of every signature: seeds, temperatures, classes, data rows."""
    seed = np.arange(ROWS, dtype=np.int64) * 7 + 3
    temperature = np.array([1.0, 0.7, 0.0, 1.0, 0.5, 1.2], np.float32)
    inputs = {"seed": seed, "temperature": temperature}
    if name == "digits_conditional_glow":
        inputs["condition"] = np.arange(ROWS, dtype=np.int32) % 10
    if name.startswith("digits"):
        from sklearn.datasets import load_digits

        x = load_digits().images[:ROWS].astype(np.float32).reshape(ROWS, 8, 8, 1)
    else:
        x = np.linspace(-2.0, 2.0, ROWS * 2, dtype=np.float32).reshape(ROWS, 2)
    inputs["x"] = x
    return inputs


def answers(version_dir, inputs):
    """`{signature/output: array}` from calling every signature of the export."""
    loaded = tf.saved_model.load(version_dir)
    condition = {"condition": tf.constant(inputs["condition"])} if "condition" in inputs else {}
    out = {}
    sample = loaded.signatures["sample"](seed=tf.constant(inputs["seed"]),
                                         temperature=tf.constant(inputs["temperature"]), **condition)
    out.update({f"sample/{k}": v.numpy() for k, v in sample.items()})
    log_prob = loaded.signatures["log_prob"](x=tf.constant(inputs["x"]), **condition)
    out.update({f"log_prob/{k}": v.numpy() for k, v in log_prob.items()})
    z = loaded.signatures["encode"](x=tf.constant(inputs["x"]), **condition)["z"]
    out["encode/z"] = z.numpy()
    out["decode/x"] = loaded.signatures["decode"](z=z, **condition)["x"].numpy()
    return out


def main():
    arrays = {}
    for name in MODELS:
        inputs = reference_inputs(name)
        arrays.update({f"{name}/input/{k}": v for k, v in inputs.items()})
        version_dir = os.path.join(ROOT, "saved_models", name, "1")
        arrays.update({f"{name}/{k}": v for k, v in answers(version_dir, inputs).items()})
    np.savez(os.path.join(HERE, "shipped_reference.npz"), **arrays)
    print(sorted(arrays))


if __name__ == "__main__":
    main()
