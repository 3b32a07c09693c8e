"""DDPM benchmarks: sample quality per sampler, training speed against a keras-io-style
reference, and the sampling loop in graph mode vs XLA.

- `quality`: the shipped digits DDPM (saved_models/digits_ddpm, through its `sample`
  signature) with ancestral sampling (steps = T, eta = 1) and DDIM (eta = 0) at 100, 50,
  20 and 10 steps: Frechet distance and KID in the digits classifier's feature space
  (`tfgen.metrics.report.sample_quality`, as bench/sample_quality.py), 269 samples
  (seeds 0..268, the test rows' labels) against the test digits, next to the floor
  (validation vs test digits), and seconds per sample. Also the variational bound's
  bits/dim on the test digits (the export's `log_prob` signature).
- `training`: examples/s of DDPM training steps on the digits: tfgen's `DDPM` (as
  shipped: U-Net, stateless step-keyed noise, label dropout, EMA after each step)
  against a reference written here in the shape of keras-io's
  `examples/generative/ddpm.py` (a functional U-Net of the same blocks and widths, its
  `GaussianDiffusion.q_sample`, MSE on the noise, the EMA as a Python loop of assigns),
  interleaved in one process, graph mode and XLA.
- `sampling`: DDIM-50 sampling of 64 rows by the shipped model's network, the whole
  `tf.while_loop` in a `tf.function`, graph mode vs `jit_compile=True`.

    python bench/diffusion.py                    # all three (~15 min on a loaded 2-core VM)
    python bench/diffusion.py --parts quality    # one part
    python bench/diffusion.py --quick            # smoke run
    python bench/diffusion.py --parts quality --model DIR   # another export of the config
"""

import argparse
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import format_table, interleave, machine_line, median, short_reason, timed_fit  # noqa: E402

from tfgen.backend import keras, tf  # noqa: E402
from tfgen.data.datasets import load_dataset  # noqa: E402
from tfgen.evaluation.evaluate import draw_samples, sample_inputs  # noqa: E402
from tfgen.latent.callers import LocalCaller  # noqa: E402
from tfgen.metrics.bits import bits_per_dim  # noqa: E402
from tfgen.metrics.features import load_feature_network  # noqa: E402
from tfgen.metrics.report import sample_quality  # noqa: E402
from tfgen.models.base import model_from_config  # noqa: E402
from tfgen.models.symmetric_range import to_symmetric  # noqa: E402
from tfgen.training.config import load_config  # noqa: E402

REPO = os.path.dirname(HERE)
SHIPPED = os.path.join(REPO, "saved_models", "digits_ddpm")
CONFIG = os.path.join(REPO, "tf_configs", "digits_ddpm.yaml")


# === Sample quality of the shipped model ===
def quality(quick, model=SHIPPED):
    caller = LocalCaller(model)
    spec = caller.data_spec()
    timesteps = caller.metadata["config"]["timesteps"]
    dataset = load_dataset(caller.metadata["training_data"]["data"])
    test, validation = dataset.splits["test"], dataset.splits["validation"]
    network = load_feature_network("digits_classifier")
    floor = sample_quality(test.x, validation.x, dataset.spec, network, fake_labels=validation.y)
    rows = [["floor: validation digits", "-", f"{floor['frechet_distance']:.3f}", "1.00x",
             f"{floor['kid']:.4f}", f"{floor['class_accuracy']:.3f}", "-"]]
    samplers = [("ancestral (DDPM)", timesteps, 1.0)] + [(f"DDIM {s}", s, 0.0) for s in (100, 50, 20, 10)]
    if quick:
        samplers = samplers[-1:]
    for name, steps, eta in samplers:
        inputs = sample_inputs(len(test), 0, 1.0, test.y)
        inputs["steps"] = np.full([len(test)], steps, np.int32)
        inputs["eta"] = np.full([len(test)], eta, np.float32)
        inputs["guidance_scale"] = np.ones([len(test)], np.float32)
        start = time.perf_counter()
        samples = draw_samples(caller, inputs, batch_size=len(test))
        seconds = (time.perf_counter() - start) / len(test)
        figures = sample_quality(test.x, samples, spec, network, fake_labels=test.y)
        rows.append([name, steps, f"{figures['frechet_distance']:.3f}",
                     f"{figures['frechet_distance'] / floor['frechet_distance']:.2f}x", f"{figures['kid']:.4f}",
                     f"{figures['class_accuracy']:.3f}", f"{seconds * 1000:.1f}"])
        print(f"  {name}: done", flush=True)
    print(f"\nsample quality, {len(test)} samples vs the test digits (guidance_scale 1.0, temperature 1.0)")
    print(format_table(["sampler", "steps", "FD", "FD / floor", "KID", "class ok", "ms / sample"], rows))
    x = test.x[:32] if quick else test.x
    log_prob = np.concatenate([caller.call("log_prob", {"x": x[i:i + 64], "condition": test.y[i:i + 64]})["log_prob"]
                               for i in range(0, len(x), 64)])
    bits = bits_per_dim(log_prob, int(np.prod(spec.event_shape)))
    print(f"\nvariational bound on the test digits ({len(x)} rows): {bits.mean():.3f} +- "
          f"{bits.std() / math.sqrt(len(bits)):.3f} bits/dim")


# === Training speed against a keras-io-style reference ===
def keras_io_unet(event_shape, filters, multipliers, blocks, groups, embedding_dim, num_classes):
    """The U-Net of keras-io's ddpm.py (ResidualBlock, DownSample, UpSample,
    AttentionBlock at the lowest level, TimeEmbedding + TimeMLP), as a functional model
    of the same widths as tfgen's, plus the class embedding tfgen's conditional model has."""
    layers = keras.layers
    image = keras.Input(event_shape)
    time_input = keras.Input((), dtype=tf.int64)
    label = keras.Input((), dtype=tf.int32)

    def time_embedding(t):
        half = embedding_dim // 2
        frequencies = tf.exp(-math.log(10000.0) * tf.range(half, dtype=tf.float32) / half)
        angles = tf.cast(t, tf.float32)[:, None] * frequencies[None, :]
        return tf.concat([tf.sin(angles), tf.cos(angles)], -1)

    def residual_block(x, t, width):
        residual = x if x.shape[-1] == width else layers.Conv2D(width, 1)(x)
        t = layers.Dense(width)(tf.nn.swish(t))[:, None, None, :]
        x = layers.Conv2D(width, 3, padding="same")(tf.nn.swish(layers.GroupNormalization(
            math.gcd(groups, x.shape[-1]))(x)))
        x = x + t
        x = layers.Conv2D(width, 3, padding="same")(tf.nn.swish(layers.GroupNormalization(groups)(x)))
        return x + residual

    def attention_block(x):
        channels = x.shape[-1]
        h = layers.GroupNormalization(groups)(x)
        q, k, v = layers.Dense(channels)(h), layers.Dense(channels)(h), layers.Dense(channels)(h)
        size = x.shape[1] * x.shape[2]
        q, k, v = (tf.reshape(a, [-1, size, channels]) for a in (q, k, v))
        weights = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / math.sqrt(channels))
        return x + layers.Dense(channels)(tf.reshape(tf.matmul(weights, v), [-1, x.shape[1], x.shape[2], channels]))

    t = layers.Dense(embedding_dim)(layers.Dense(embedding_dim, activation="swish")(
        layers.Lambda(time_embedding)(time_input)))
    t = t + layers.Embedding(num_classes + 1, embedding_dim)(label)
    x = layers.Conv2D(filters, 3, padding="same")(image)
    skips = [x]
    widths = [filters * m for m in multipliers]
    for i, width in enumerate(widths):
        if i:
            x = layers.AveragePooling2D()(x)
            skips.append(x)
        for _ in range(blocks):
            x = residual_block(x, t, width)
            if i == len(widths) - 1:
                x = attention_block(x)
            skips.append(x)
    for i in reversed(range(len(widths))):
        for _ in range(blocks + 1):
            x = residual_block(layers.Concatenate()([x, skips.pop()]), t, widths[i])
            if i == len(widths) - 1:
                x = attention_block(x)
        if i:
            x = layers.UpSampling2D(interpolation="nearest")(x)
    x = layers.Conv2D(event_shape[-1], 3, padding="same")(tf.nn.swish(layers.GroupNormalization(groups)(x)))
    return keras.Model([image, time_input, label], x)


class KerasIODiffusionModel(keras.Model):
    """keras-io ddpm.py's `DiffusionModel.train_step`, with a label (dropped as tfgen does)."""

    def __init__(self, network, ema_network, alpha_bar, timesteps, num_classes, label_dropout, ema=0.999):
        super().__init__()
        self.network, self.ema_network, self.ema = network, ema_network, ema
        self.sqrt_alpha_bar = tf.constant(np.sqrt(alpha_bar), tf.float32)
        self.sqrt_one_minus_alpha_bar = tf.constant(np.sqrt(1 - alpha_bar), tf.float32)
        self.timesteps, self.num_classes, self.label_dropout = timesteps, num_classes, label_dropout

    def train_step(self, data):
        images, labels = data
        batch_size = tf.shape(images)[0]
        t = tf.random.uniform((batch_size,), minval=0, maxval=self.timesteps, dtype=tf.int64)
        labels = tf.where(tf.random.uniform((batch_size,)) < self.label_dropout, self.num_classes, labels)
        with tf.GradientTape() as tape:
            noise = tf.random.normal(tf.shape(images), dtype=images.dtype)
            images_t = (tf.gather(self.sqrt_alpha_bar, t)[:, None, None, None] * images
                        + tf.gather(self.sqrt_one_minus_alpha_bar, t)[:, None, None, None] * noise)
            pred_noise = self.network([images_t, t, labels], training=True)
            loss = tf.reduce_mean((noise - pred_noise) ** 2)
        gradients = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
            ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)
        return {"loss": loss}


def training_runs(steps, warmup):
    config = load_config(CONFIG)
    dataset = load_dataset(config.data.to_load_dict())
    kwargs = dict(config.model.config)
    x, y = dataset.splits["train"].x, dataset.splits["train"].y.astype(np.int32)
    batch_size = config.training.batch_size

    def pipeline(images):
        return (tf.data.Dataset.from_tensor_slices((images.astype(np.float32), y)).shuffle(len(y), seed=0).repeat()
                .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))

    def build(variant, jit):
        if variant == "tfgen":
            model = model_from_config("DDPM", dict(kwargs, data_spec=dataset.spec.to_dict()))
            model.compile(optimizer=keras.optimizers.Adam(5e-4), jit_compile=jit)
            return model, pipeline(x)
        donor = model_from_config("DDPM", dict(kwargs, data_spec=dataset.spec.to_dict(), ema_decay=0.0))
        alpha_bar = np.cumprod(1 - donor._betas.numpy().astype(np.float64))

        def unet():
            return keras_io_unet(list(dataset.spec.event_shape), donor.filters, donor.channel_multipliers,
                                 donor.blocks_per_level, donor.groups, donor.embedding_dim, dataset.spec.num_classes)
        network, ema_network = unet(), unet()
        ema_network.set_weights(network.get_weights())
        model = KerasIODiffusionModel(network, ema_network, alpha_bar, donor.timesteps, dataset.spec.num_classes,
                                      donor.label_dropout)
        model.compile(optimizer=keras.optimizers.Adam(5e-4), jit_compile=jit)
        return model, pipeline(np.asarray(to_symmetric(x.astype(np.float32), dataset.spec)))

    def measure(variant, jit):
        try:
            model, data = build(variant, jit)
            model.fit(data, epochs=1, steps_per_epoch=warmup, verbose=0)
        except Exception as error:  # noqa: BLE001  (e.g. an op XLA cannot compile: reported in the table)
            def failed(error=error):
                raise error
            return failed

        def run():  # timed step by step: a whole fit call ends on tf.data's autotuning clock
            steps_per_second, _ = timed_fit(model, data, steps)
            return steps_per_second * batch_size

        return run

    return {(variant, jit): measure(variant, jit) for variant in ("tfgen", "keras-io reference")
            for jit in (False, True)}


def training(quick):
    steps, rounds, warmup = (5, 2, 2) if quick else (30, 5, 3)
    results = interleave(training_runs(steps, warmup), rounds)
    rows = []
    for variant in ("tfgen", "keras-io reference"):
        cells = [f"{median(results[(variant, jit)]):.0f}" if isinstance(results[(variant, jit)], list)
                 else f"failed: {short_reason(results[(variant, jit)])}" for jit in (False, True)]
        ratios = [f"{median(results[(variant, jit)]) / median(results[('keras-io reference', jit)]):.2f}x"
                  if all(isinstance(results[(v, jit)], list) for v in (variant, "keras-io reference")) else "-"
                  for jit in (False, True)]
        rows.append([variant, *cells, *ratios])
    print(f"\ndigits DDPM training, examples/s (median of {rounds} interleaved rounds of {steps} steps)")
    print(format_table(["variant", "graph", "XLA", "vs reference (graph)", "vs reference (XLA)"], rows))


# === The sampling loop: graph vs XLA ===
def sampling(quick):
    config = load_config(CONFIG)
    dataset = load_dataset(config.data.to_load_dict())
    model = model_from_config("DDPM", dict(config.model.config, data_spec=dataset.spec.to_dict()))
    rows_, steps = (8, 10) if quick else (64, 50)
    seeds = tf.range(rows_, dtype=tf.int64)
    condition = tf.range(rows_, dtype=tf.int32) % dataset.spec.num_classes

    def variant(jit):
        function = tf.function(lambda: model.sample(seeds, 1.0, condition, steps=steps), autograph=False,
                               jit_compile=jit)
        function()

        def run():
            start = time.perf_counter()
            function().numpy()
            return rows_ / (time.perf_counter() - start)

        return run

    results = interleave({jit: variant(jit) for jit in (False, True)}, 2 if quick else 5)
    graph = median(results[False])
    rows = [["graph", f"{graph:.1f}", "1.00x"]]
    xla = results[True]
    rows.append(["XLA (jit_compile)", f"{median(xla):.1f}", f"{median(xla) / graph:.2f}x"] if isinstance(xla, list)
                else ["XLA (jit_compile)", f"failed: {xla}", "-"])
    print(f"\nDDIM-{steps} sampling of {rows_} rows (the shipped architecture), samples/s")
    print(format_table(["mode", "samples/s", "vs graph"], rows))


PARTS = {"quality": quality, "training": training, "sampling": sampling}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=sorted(PARTS), default=list(PARTS))
    parser.add_argument("--quick", action="store_true", help="few steps and samples (smoke run)")
    parser.add_argument("--model", default=SHIPPED, help="the DDPM export `quality` measures (base path or version "
                                                         "directory; default: the shipped one)")
    args = parser.parse_args()
    print(machine_line())
    for part in args.parts:
        PARTS[part](args.quick, **({"model": args.model} if part == "quality" else {}))
    print(machine_line())


if __name__ == "__main__":
    main()
