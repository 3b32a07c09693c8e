"""VAE benchmarks, side by side in one run:

1. Training examples/s: tfgen's `VAE` against a keras-io-style reference of the same
   networks (the shape of keras-io `examples/generative/vae.py`: a `Sampling` layer,
   encoder and decoder `keras.Model`s, a `train_step` summing the reconstruction loss and
   the analytic KL), both on the 8x8 digits with an MLP 64 -> 256 -> 256 -> z (16) -> 256
   -> 256 -> 64 x 17 logits (a categorical likelihood on the 17 levels), batch 64, graph
   mode. The two `fit` calls alternate; a callback takes the clock after the first step
   and after the last, so tracing and iterator start-up are excluded.
2. Served throughput through `tfgen serve` (gRPC, 64-row requests, one client): the
   `log_prob` signature exported at K = 256 and K = 32 posterior draws (the cost of an
   honest likelihood) and `sample`, from two servers running side by side. The model is
   the shipped digits VAE's configuration (tf_configs/digits_vae.yaml) with fresh weights:
   throughput does not depend on their values.

Usage:

    python bench/vae.py               # ~4 min on 2 idle cores
    python bench/vae.py --quick       # smoke run
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, interleave, machine_line, median  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT, HIDDEN, LEVELS, BATCH = 16, 256, 17, 64


def digits():
    from tfgen.data import load_dataset

    return load_dataset({"name": "digits", "seed": 0}).splits["train"].x


def reference_vae():
    """keras-io's VAE, with the decoder's sigmoid/binary cross-entropy replaced by a
    softmax over the 17 levels so it models the same data as tfgen's."""
    from tfgen.backend import keras, tf

    class Sampling(keras.layers.Layer):
        def call(self, inputs):
            z_mean, z_log_var = inputs
            return z_mean + tf.exp(0.5 * z_log_var) * tf.random.normal(tf.shape(z_mean))

    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(inputs / (LEVELS - 1) * 2.0 - 1.0)
    h = keras.layers.Dense(HIDDEN, activation="relu")(h)
    h = keras.layers.Dense(HIDDEN, activation="relu")(h)
    z_mean, z_log_var = keras.layers.Dense(LATENT)(h), keras.layers.Dense(LATENT)(h)
    encoder = keras.Model(inputs, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])])
    latent = keras.Input((LATENT,))
    h = keras.layers.Dense(HIDDEN, activation="relu")(latent)
    h = keras.layers.Dense(HIDDEN, activation="relu")(h)
    logits = keras.layers.Reshape((8, 8, 1, LEVELS))(keras.layers.Dense(64 * LEVELS)(h))
    decoder = keras.Model(latent, logits)

    class VAE(keras.Model):
        def __init__(self, encoder, decoder):
            super().__init__()
            self.encoder, self.decoder = encoder, decoder
            self.loss_tracker = keras.metrics.Mean(name="loss")

        @property
        def metrics(self):
            return [self.loss_tracker]

        def train_step(self, data):
            with tf.GradientTape() as tape:
                z_mean, z_log_var, z = self.encoder(data)
                reconstruction = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    tf.cast(data, tf.int32), self.decoder(z)), axis=[1, 2, 3])
                kl = -0.5 * tf.reduce_sum(1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=1)
                loss = tf.reduce_mean(reconstruction + kl)
            gradients = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

    return VAE(encoder, decoder)


def tfgen_vae():
    from tfgen.models.vae import VAE

    return VAE({"event_shape": [8, 8, 1], "kind": "image", "levels": LEVELS}, latent_dim=LATENT,
               hidden_units=[HIDDEN, HIDDEN], likelihood="categorical")


def training_rows(rounds, steps):
    from tfgen.backend import keras, tf

    x = digits()
    dataset = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=0).repeat().batch(BATCH)

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    models = {}
    for name, build in (("tfgen VAE", tfgen_vae), ("keras-io reference", reference_vae)):
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(keras.optimizers.Adam(1e-3))
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)  # traces
        models[name] = model

    def timed(model):
        def run():
            clock = Clock()
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
            return (steps - 1) * BATCH / (clock.end - clock.start)
        return run

    results = interleave({name: timed(model) for name, model in models.items()}, rounds)
    tfgen_rate, reference_rate = median(results["tfgen VAE"]), median(results["keras-io reference"])
    per_round = [a / b for a, b in zip(results["tfgen VAE"], results["keras-io reference"])]
    print(format_table(
        ["training (digits, batch 64)", "examples/s (median)", "tfgen / reference"],
        [["tfgen VAE", f"{tfgen_rate:,.0f}", f"{tfgen_rate / reference_rate:.2f}x "
          f"(per round {min(per_round):.2f}-{max(per_round):.2f})"],
         ["keras-io reference", f"{reference_rate:,.0f}", "1.00x"]]))


def export_at(k, base):
    from tfgen.backend import tf
    from tfgen.export.saved_model import export_model
    from tfgen.models.vae import VAE

    with open(os.path.join(REPO, "tf_configs", "digits_vae.yaml")) as f:
        config = yaml.safe_load(f)["model"]["config"]
    model = VAE({"event_shape": [8, 8, 1], "kind": "image", "levels": LEVELS},
                **dict(config, num_importance_samples=k))
    model(tf.zeros([1, 8, 8, 1]))
    export_model(model, base)
    return base


def serving_rows(rounds, seconds):
    from serving import MODEL_NAME, Server  # bench/serving.py

    from tfgen.serving.client import Client

    x = digits()[:BATCH]
    seeds = np.arange(BATCH, dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        bases = {k: export_at(k, os.path.join(tmp, f"vae_k{k}")) for k in (256, 32)}
        with Server(bases[256]) as server_256, Server(bases[32]) as server_32:
            clients = {256: Client(server_256.address, timeout=120), 32: Client(server_32.address, timeout=120)}

            def rate(client, signature, inputs):
                def run():
                    client.predict(MODEL_NAME, inputs, signature=signature)  # warm
                    rows, start = 0, time.perf_counter()
                    while time.perf_counter() - start < seconds:
                        client.predict(MODEL_NAME, inputs, signature=signature)
                        rows += BATCH
                    return rows / (time.perf_counter() - start)
                return run

            variants = {
                "log_prob, K = 256": rate(clients[256], "log_prob", {"x": x}),
                "log_prob, K = 32": rate(clients[32], "log_prob", {"x": x}),
                "sample": rate(clients[32], "sample", {"seed": seeds, "temperature": np.ones(BATCH, np.float32)}),
            }
            results = interleave(variants, rounds)
            for client in clients.values():
                client.close()
    base = median(results["log_prob, K = 256"])
    print(format_table(["served over gRPC (64-row requests, 1 client)", "rows/s (median)", "vs log_prob K = 256"],
                       [[name, f"{median(values):,.0f}", f"{median(values) / base:.2f}x"]
                        for name, values in results.items()]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer rounds, shorter calls")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    print(machine_line())
    training_rows(rounds, steps=10 if args.quick else 60)
    print()
    serving_rows(rounds, seconds=1.0 if args.quick else 4.0)
    print(machine_line())


if __name__ == "__main__":
    main()
