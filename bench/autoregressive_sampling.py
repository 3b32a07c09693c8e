"""Autoregressive sampling and training speed: naive vs cached (in process and through
the exported `sample` signature), TFP's `tfd.PixelCNN`, real-time factor, graph vs XLA.

    .venv/bin/python bench/autoregressive_sampling.py            # ~15-25 min on a loaded 2-core VM
    .venv/bin/python bench/autoregressive_sampling.py --quick    # smaller sizes, one round

Sections (each variant timed in this one process, interleaved round by round; medians):

1. PixelCNN, 16 images at 8x8 (the shipped digits architecture and weights) and 28x28
   (the same architecture, random weights): `sample_naive` (the whole network per
   pixel), `tfd.PixelCNN` (TFP's PixelCNN++, which also runs the whole network per pixel)
   with about as many parameters, tfgen's cached `sample` in process, and the same
   through the exported SavedModel's `sample` signature.
2. WaveNet (the shipped speech architecture and weights, receptive field 1024 samples):
   generated samples/s naive vs cached, and the real-time factor (seconds of audio per
   second of compute) of the exported `sample` signature at batch 1 and 16.
3. Training examples/s and `log_prob` rows/s of both shipped architectures, traced
   graph vs XLA (`jit_compile=True`).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

from common import format_table, interleave, machine_line, median  # noqa: E402
from reexport_shipped import restore  # noqa: E402

from tfgen.backend import keras, tf, tfd  # noqa: E402
from tfgen.export.reader import resolve_version  # noqa: E402
from tfgen.export.saved_model import export_model  # noqa: E402
from tfgen.models.base import model_from_config  # noqa: E402


def timed(function, *args):
    def run():
        start = time.perf_counter()
        out = function(*args)
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
        return time.perf_counter() - start
    return run


def warm(variants):
    for run in variants.values():
        run()
    return variants


def tfp_pixel_cnn(shape, levels, target_params):
    """`tfd.PixelCNN` with the filter count whose parameter count is nearest the target."""
    best = None
    for filters in (8, 12, 16, 20, 24, 32, 48, 64):
        dist = tfd.PixelCNN(image_shape=shape, num_resnet=1, num_hierarchies=2, num_filters=filters,
                            num_logistic_mix=5, high=levels - 1)
        dist.log_prob(tf.zeros([1, *shape]))
        params = dist.network.count_params()
        if best is None or abs(params - target_params) < abs(best[1] - target_params):
            best = (dist, params, filters)
    return best


def parameter_count(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def pixel_cnn_section(shipped_dir, rounds, quick):
    trained, meta = restore(shipped_dir)
    rows = []
    batch = 16
    seeds = tf.range(batch, dtype=tf.int64)
    condition = tf.constant(np.arange(batch) % 10, tf.int32)
    temperature = tf.ones([batch])
    for size in (8, 16) if quick else (8, 28):
        if size == 8:
            model, loaded_dir = trained, shipped_dir
        else:
            spec = dict(meta["config"]["data_spec"], event_shape=[size, size, 1])
            model = model_from_config(meta["class_name"], dict(meta["config"], data_spec=spec))
            model.log_prob(tf.zeros([1, size, size, 1]), condition[:1])
            loaded_dir = export_model(model, tempfile.mkdtemp(prefix="bench_pixel_cnn_"))
        signature = tf.saved_model.load(loaded_dir).signatures["sample"]
        dist, tfp_params, filters = tfp_pixel_cnn((size, size, 1), model.data_spec.levels, parameter_count(model))
        variants = warm({
            "naive": timed(tf.function(model.sample_naive, autograph=False), seeds, temperature, condition),
            f"tfd.PixelCNN ({filters} filters)": timed(tf.function(lambda: dist.sample(batch, seed=1)), ),
            "cached": timed(tf.function(model.sample, autograph=False), seeds, temperature, condition),
            "cached, exported signature": timed(lambda: signature(seed=seeds, temperature=temperature,
                                                                  condition=condition)),
        })
        results = interleave(variants, rounds)
        cached = median(results["cached"])
        for name, times in results.items():
            params = tfp_params if name.startswith("tfd") else parameter_count(model)
            rows.append([f"{size}x{size}", name, f"{params:,}", f"{median(times):.2f}",
                         f"{median(times) / cached:.1f}x"])
    print("\nPixelCNN: seconds to sample 16 images (median of rounds); last column: time / cached time")
    print(format_table(["image", "sampler", "parameters", "seconds", "vs cached"], rows, ["l", "l", "r", "r", "r"]))


def wavenet_section(shipped_dir, rounds, quick):
    model, meta = restore(shipped_dir)
    rate = model.data_spec.sample_rate
    print(f"\nWaveNet: receptive field {model.receptive_field} samples, {parameter_count(model):,} parameters, "
          f"{rate} Hz")
    steps = 300 if quick else 1500
    seed, condition = tf.constant([0], tf.int64), tf.constant([0], tf.int32)
    length = tf.constant([steps])
    variants = warm({
        "naive": timed(tf.function(model.sample_naive, autograph=False), seed, 1.0, condition, length),
        "cached": timed(tf.function(model.sample, autograph=False), seed, 1.0, condition, length),
    })
    results = interleave(variants, rounds)
    naive, cached = median(results["naive"]), median(results["cached"])
    print(format_table(["sampler", f"seconds for {steps} samples", "samples/s", "speed-up"], [
        ["naive", f"{naive:.2f}", f"{steps / naive:.0f}", "1.0x"],
        ["cached (queues)", f"{cached:.2f}", f"{steps / cached:.0f}", f"{naive / cached:.1f}x"]]))
    signature = tf.saved_model.load(shipped_dir).signatures["sample"]
    seconds_of_audio = 0.25 if quick else 1.0
    rows = []
    for batch in (1, 16):
        n = int(seconds_of_audio * rate)
        inputs = {"seed": tf.range(batch, dtype=tf.int64), "temperature": tf.ones([batch]),
                  "condition": tf.constant(np.arange(batch) % model.data_spec.num_classes, tf.int32),
                  "length": tf.fill([batch], n)}
        run = timed(lambda: signature(**inputs))
        run()
        seconds = median([run() for _ in range(max(1, rounds - 1))])
        rows.append([str(batch), f"{seconds_of_audio:.2f} s x {batch}", f"{seconds:.2f}",
                     f"{batch * seconds_of_audio / seconds:.3f}"])
    print("\nWaveNet real-time factor through the exported sample signature (audio seconds / compute second)")
    print(format_table(["batch", "audio", "compute seconds", "real-time factor"], rows))


def training_section(dirs, rounds, quick):
    rows = []
    for name, shipped_dir, batch in dirs:
        base, meta = restore(shipped_dir)
        spec = base.data_spec
        rng = np.random.default_rng(0)
        x = tf.constant(rng.integers(0, spec.levels, size=[batch, *spec.event_shape]).astype(np.float32))
        condition = tf.constant(np.arange(batch) % spec.num_classes, tf.int32)
        variants = {}
        for mode, jit in (("graph", False), ("XLA", True)):
            model = model_from_config(meta["class_name"], meta["config"])
            model.compile(keras.optimizers.Adam(1e-3), jit_compile=jit)
            model.log_prob(x[:1], condition[:1])
            train = tf.function(model.train_step, jit_compile=jit)
            log_prob = tf.function(model.log_prob, jit_compile=jit, autograph=False)
            variants[f"{mode} train"] = timed(train, (x, condition))
            variants[f"{mode} log_prob"] = timed(log_prob, x, condition)
        results = interleave(warm(variants), rounds)
        for mode in ("graph", "XLA"):
            train, score = median(results[f"{mode} train"]), median(results[f"{mode} log_prob"])
            rows.append([name, mode, str(batch), f"{batch / train:.1f}", f"{batch / score:.1f}",
                         f"{median(results['graph train']) / train:.2f}x"])
    print("\nTraining examples/s and log_prob rows/s (random batches of the shipped shapes)")
    print(format_table(["model", "mode", "batch", "train examples/s", "log_prob rows/s", "train vs graph"], rows,
                       ["l", "l", "r", "r", "r", "r"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    pixel_cnn = resolve_version(os.path.join(ROOT, "saved_models", "digits_conditional_pixel_cnn"))
    wavenet = resolve_version(os.path.join(ROOT, "saved_models", "speech_wavenet"))
    print(machine_line())
    pixel_cnn_section(pixel_cnn, rounds, args.quick)
    wavenet_section(wavenet, rounds, args.quick)
    training_section([("digits_conditional_pixel_cnn", pixel_cnn, 64), ("speech_wavenet", wavenet, 8)],
                     rounds, args.quick)
    print(machine_line())


if __name__ == "__main__":
    main()
