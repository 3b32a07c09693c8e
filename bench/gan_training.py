"""GAN training steps/s: tfgen's GAN against a keras-io-style reference of the same
networks, in graph mode and under XLA (`jit_compile`), interleaved in one process.

The references follow keras-io's `examples/generative/dcgan_overriding_train_step.py`
(one discriminator pass on real and generated images concatenated, binary
cross-entropy with label noise) and `examples/generative/wgan_gp.py` (k critic steps,
alpha ~ U[0, 1], `sqrt(sum(grad^2))` norm), written here on the very network layers
tfgen's GAN builds (`tfgen.models.gan.networks`), so the difference is the training
step alone. "tfgen train" is what `tfgen train` runs on the shipped config: the model's
step with the non-finite step guard of the default `faults.nonfinite: stop` installed
(`tfgen.training.faults.install_step_guard`: it finds a bad step, holds no update back),
compiled with the config's `training.steps_per_execution` (10 steps a call for the
8-Gaussians WGAN-GP, 1 for the DCGAN); "tfgen train, 1 step a call" is the same step one
step a call; "tfgen train, faults.nonfinite: skip" is the guard that skips a bad step
(every update waits for the check); "tfgen train, faults.nonfinite: unguarded" is the
step without a guard; "tfgen train, Keras' Adam" is "tfgen train" with keras-io's
optimizer instead of the one `tfgen train` builds for `optimizer: adam`
(`tfgen.training.optimizers.Adam`, the same maths with large variables' updates in one
fused kernel, which every other tfgen row uses); "tfgen model" is `GAN.fit` alone (stateless step-keyed noise, the generator's EMA after each
step, per-replica gradient scaling) one step a call, which is what `tfgen train` with
`faults.nonfinite: unguarded` runs at one step a call; the "no EMA" row drops the EMA as well. The keras-io reference runs as keras-io writes it
(one step a call), and, for a config with more, also with the config's steps a call.
Each `fit` call is timed call by call (`common.timed_fit`): steps/s is 1 / the median
step time, CPU ms/step the process's CPU time per step; the call's start-up and teardown
(tf.data's, not the step's) are left out.

    python bench/gan_training.py            # ~5 min on a loaded 2-core VM
    python bench/gan_training.py --quick    # smoke run
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, interleave, machine_line, median, short_reason, timed_fit  # noqa: E402

from tfgen.backend import keras, tf  # noqa: E402
from tfgen.data.datasets import load_dataset  # noqa: E402
from tfgen.models.gan import GAN  # noqa: E402
from tfgen.models.symmetric_range import to_symmetric  # noqa: E402
from tfgen.training import faults, optimizers  # noqa: E402
from tfgen.training.config import load_config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (dataset config, GAN kwargs, batch size, reference style, the shipped config
# in tf_configs/ whose training.steps_per_execution "tfgen train" uses)
CONFIGS = {
    "dcgan_digits": ({"name": "digits", "seed": 0},
                     dict(network="dcgan", latent_dim=32, generator_filters=[128, 64],
                          discriminator_filters=[64, 128], loss="non_saturating"), 64, "dcgan", "digits_dcgan"),
    "wgan_gp_eight_gaussians": ({"name": "eight_gaussians", "num_samples": 20000, "seed": 0},
                                dict(network="mlp", latent_dim=8, generator_units=[128] * 3,
                                     discriminator_units=[128] * 3, generator_batch_norm=False, loss="wasserstein",
                                     gradient_penalty_weight=10.0, discriminator_steps=5), 256, "wgan_gp",
                                "eight_gaussians_wgan_gp"),
}


class KerasIODCGAN(keras.Model):
    """keras-io's DCGAN `train_step` (dcgan_overriding_train_step.py) on given networks."""

    def __init__(self, generator, discriminator, latent_dim):
        super().__init__()
        self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
        self.d_loss_metric, self.g_loss_metric = keras.metrics.Mean(name="d_loss"), keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
        generated_images = self.generator(random_latent_vectors, training=True)
        combined_images = tf.concat([generated_images, real_images], axis=0)
        labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * tf.random.uniform(tf.shape(labels))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images, training=True)[:, None]
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
        misleading_labels = tf.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors, training=True), training=True)
            g_loss = self.loss_fn(misleading_labels, predictions[:, None])
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


class KerasIOWGANGP(keras.Model):
    """keras-io's WGAN-GP `train_step` (wgan_gp.py, with alpha ~ U[0, 1]) on given networks."""

    def __init__(self, generator, discriminator, latent_dim, d_steps, gp_weight=10.0):
        super().__init__()
        self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim
        self.d_steps, self.gp_weight = d_steps, gp_weight

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def gradient_penalty(self, batch_size, real_images, fake_images):
        alpha = tf.random.uniform([batch_size] + [1] * (len(real_images.shape) - 1), 0.0, 1.0)
        interpolated = real_images + alpha * (fake_images - real_images)
        with tf.GradientTape() as gp_tape:
            gp_tape.watch(interpolated)
            pred = self.discriminator(interpolated, training=True)
        grads = gp_tape.gradient(pred, [interpolated])[0]
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=list(range(1, len(real_images.shape)))))
        return tf.reduce_mean((norm - 1.0) ** 2)

    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        for _ in range(self.d_steps):
            random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
            with tf.GradientTape() as tape:
                fake_images = self.generator(random_latent_vectors, training=True)
                fake_logits = self.discriminator(fake_images, training=True)
                real_logits = self.discriminator(real_images, training=True)
                d_cost = tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits)
                d_loss = d_cost + self.gradient_penalty(batch_size, real_images, fake_images) * self.gp_weight
            d_gradient = tape.gradient(d_loss, self.discriminator.trainable_variables)
            self.d_optimizer.apply_gradients(zip(d_gradient, self.discriminator.trainable_variables))
        random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
        with tf.GradientTape() as tape:
            generated_images = self.generator(random_latent_vectors, training=True)
            g_loss = -tf.reduce_mean(self.discriminator(generated_images, training=True))
        gen_gradient = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(gen_gradient, self.generator.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss}


# `tfgen train` with `faults.nonfinite: unguarded`: the shipped config's steps a call, no guard
# (at one step a call that is "tfgen model").
UNGUARDED = "tfgen train, faults.nonfinite: unguarded"
SKIP = "tfgen train, faults.nonfinite: skip"


KERAS_ADAM = "tfgen train, Keras' Adam"


def adam(variant):
    """keras-io's optimizer for the reference (and the Keras' Adam row), else the one
    `tfgen train` builds for `optimizer: adam` (large variables' updates fused)."""
    if variant.startswith("keras-io reference") or variant == KERAS_ADAM:
        return keras.optimizers.Adam(2e-4, beta_1=0.5)
    return optimizers.Adam(learning_rate=2e-4, beta_1=0.5)


def shipped_steps_per_execution(config_name):
    return load_config(os.path.join(REPO, "tf_configs", f"{config_name}.yaml")).training.steps_per_execution


def build(variant, spec, kwargs, style, jit, steps_per_execution):
    if variant.startswith("keras-io reference"):
        # Fresh networks of the same architecture, taken from a GAN of the same config.
        donor = GAN(spec, **kwargs, ema_decay=0.0)
        model = (KerasIODCGAN(donor.generator, donor.discriminator, donor.latent_dim) if style == "dcgan" else
                 KerasIOWGANGP(donor.generator, donor.discriminator, donor.latent_dim, donor.discriminator_steps))
        model.compile(d_optimizer=adam(variant), g_optimizer=adam(variant), jit_compile=jit,
                      steps_per_execution=steps_per_execution)
        return model, lambda x: to_symmetric(x, spec)
    model = GAN(spec, **kwargs, ema_decay=0.0 if variant == "tfgen model, no EMA" else 0.999)
    model.compile(generator_optimizer=adam(variant), discriminator_optimizer=adam(variant), jit_compile=jit,
                  steps_per_execution=steps_per_execution)
    if variant.startswith("tfgen train") and variant != UNGUARDED:
        faults.install_step_guard(model, skip_bad_steps=variant == SKIP)
    return model, lambda x: x


def variants(name):
    """variant -> steps a call, for config `name`."""
    shipped = shipped_steps_per_execution(CONFIGS[name][4])
    chosen = {"tfgen train": shipped, "tfgen train, 1 step a call": 1, KERAS_ADAM: shipped, SKIP: shipped,
              UNGUARDED: shipped,
              "tfgen model": 1,
              "tfgen model, no EMA": 1, "keras-io reference": 1, f"keras-io reference, {shipped} steps a call": shipped}
    if shipped == 1:  # the extra rows would repeat "tfgen train", "tfgen model" and the reference
        del chosen["tfgen train, 1 step a call"], chosen[UNGUARDED], chosen["keras-io reference, 1 steps a call"]
    return chosen


def measure(name, variant, jit, steps, warmup, steps_per_execution):
    data, kwargs, batch_size, style, _ = CONFIGS[name]
    dataset = load_dataset(data)
    model, to_unit = build(variant, dataset.spec, kwargs, style, jit, steps_per_execution)
    x = to_unit(dataset.splits["train"].x).numpy() if variant.startswith("keras-io") else dataset.splits["train"].x
    ds = tf.data.Dataset.from_tensor_slices(x.astype(np.float32)).shuffle(len(x), seed=0).repeat().batch(
        batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    model.fit(ds, epochs=1, steps_per_epoch=warmup * steps_per_execution, verbose=0)  # traces

    def run():
        return timed_fit(model, ds, steps)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps and rounds")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS))
    parser.add_argument("--steps", type=int, help="timed steps per fit call (default 40; at least 3 calls' worth)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    steps, rounds, warmup = (30, 2, 2) if args.quick else (40, 5, 5)
    steps, rounds = args.steps or steps, args.rounds or rounds
    print(machine_line())
    for name in args.configs:
        chosen = variants(name)
        runs = {(variant, jit): measure(name, variant, jit, steps, warmup, per_call)
                for variant, per_call in chosen.items() for jit in (False, True)}
        results = interleave(runs, rounds)
        rows = []
        for variant in chosen:
            row = [variant]
            for jit in (False, True):
                got, reference = results[(variant, jit)], results[("keras-io reference", jit)]
                if not isinstance(got, list) or not isinstance(reference, list):
                    failed = got if not isinstance(got, list) else reference
                    row += [f"failed: {short_reason(failed)}", "-", "-", "-"]
                    continue
                # Ratios of the round's interleaved pair, then their median; >= 1: as fast.
                rate = median([r for r, _ in got])
                rate_ratio = median([r / ref_r for (r, _), (ref_r, _) in zip(got, reference)])
                cpu = median([c for _, c in got])
                cpu_ratio = median([ref_c / c for (_, c), (_, ref_c) in zip(got, reference)])
                row += [f"{rate:.1f}", f"{rate_ratio:.2f}x", f"{cpu:.1f}", f"{cpu_ratio:.2f}x"]
            rows.append(row)
        print(f"\n{name}: training steps/s and CPU ms/step (medians of {rounds} interleaved rounds of {steps} "
              "steps; ratios: the keras-io reference's time (one step a call, as keras-io runs it) / the variant's, "
              ">= 1.00x is at least as fast)")
        print(format_table(["variant", "graph steps/s", "vs ref", "graph CPU ms/step", "vs ref",
                            "XLA steps/s", "vs ref", "XLA CPU ms/step", "vs ref"], rows))
    print(machine_line())


if __name__ == "__main__":
    main()
