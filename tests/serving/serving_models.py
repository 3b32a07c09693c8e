"""Real SavedModels for the serving tests, built from plain tf.Module + tf.function.

Shaped like tfgen's export contract (docs/architecture.md, the SavedModel contract) but
independent of tfgen.models, as the server is: a standard normal "flow" on 2-D points.

- `log_prob`: x float32 [B,2] -> log_prob = -0.5*|x|^2 - log(2 pi), bits_per_dim
- `sample`: seed int64 [B], temperature float32 [B] (SignatureDef default [1.0]),
  condition int32 [B] if conditional -> samples [B,2] (stateless normal keyed by the
  seed, times temperature, plus condition), log_prob
- `encode`/`decode`: identity; `serving_default` = `sample`
- `describe`: text string [B] -> length int32, echo_bytes string (binary data tests)
"""

import math
import os
import shutil

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

D = 2
LOG_2PI = math.log(2 * math.pi)


def log_prob_np(x):
    x = np.asarray(x, np.float32)
    lp = -0.5 * np.sum(x * x, axis=-1) - 0.5 * D * LOG_2PI
    return lp.astype(np.float32), (-lp / (D * math.log(2))).astype(np.float32)


class ToyFlow(tf.Module):
    def __init__(self, conditional=False, delay_ms=0):
        super().__init__()
        self.conditional = conditional
        self.delay_ms = delay_ms
        self.shift = tf.Variable(0.0, name="shift")  # a real variable to restore
        self.weights = tf.Variable(tf.eye(256) * 0.5, name="weights")

    def _fixed_cost(self):
        # A fixed amount of work per call, whatever the batch: what batching amortizes
        # in real models (a network's weights are read once per call).
        m = self.weights  # a variable, so Grappler cannot fold the products away
        for _ in range(self.delay_ms):
            m = tf.linalg.matmul(m, m)
        return tf.reduce_sum(m) * 0.0

    def _log_prob(self, x):
        lp = -0.5 * tf.reduce_sum(tf.square(x - self.shift), axis=-1) - 0.5 * D * LOG_2PI
        if self.delay_ms:
            lp = lp + self._fixed_cost()
        return lp, -lp / (D * math.log(2.0))

    @tf.function(input_signature=[tf.TensorSpec([None, D], tf.float32, name="x")])
    def log_prob(self, x):
        lp, bpd = self._log_prob(x)
        return {"log_prob": lp, "bits_per_dim": bpd}

    def _noise(self, seed):
        return tf.map_fn(
            lambda s: tf.random.stateless_normal([D], seed=tf.stack([s, tf.constant(7, tf.int64)])),
            seed,
            fn_output_signature=tf.TensorSpec([D], tf.float32),
        )

    def _sample(self, seed, temperature, condition=None):
        z = self._noise(seed) * temperature[:, None] + self.shift
        if condition is not None:
            z = z + tf.cast(condition, tf.float32)[:, None]
        if self.delay_ms:
            z = z + self._fixed_cost()
        lp, _ = self._log_prob(z)
        return {"samples": z, "log_prob": lp}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def describe(self, text):
        return {"length": tf.strings.length(text), "echo_bytes": tf.identity(text)}

    @tf.function(input_signature=[tf.TensorSpec([None, D], tf.float32, name="x")])
    def encode(self, x):
        return {"z": tf.identity(x)}

    @tf.function(input_signature=[tf.TensorSpec([None, D], tf.float32, name="z")])
    def decode(self, z):
        return {"x": tf.identity(z)}


def _sample_fn(module, conditional):
    if conditional:
        @tf.function(input_signature=[
            tf.TensorSpec([None], tf.int64, name="seed"),
            tf.TensorSpec([None], tf.float32, name="temperature"),
            tf.TensorSpec([None], tf.int32, name="condition"),
        ])
        def sample(seed, temperature=tf.constant([1.0]), condition=None):
            return module._sample(seed, temperature, condition)
    else:
        @tf.function(input_signature=[
            tf.TensorSpec([None], tf.int64, name="seed"),
            tf.TensorSpec([None], tf.float32, name="temperature"),
        ])
        def sample(seed, temperature=tf.constant([1.0])):
            return module._sample(seed, temperature)
    return sample


def sample_np(seeds, temperature=1.0, condition=0):
    """What the sample signature returns, computed eagerly (same stateless ops)."""
    seeds = np.asarray(seeds, np.int64)
    z = np.stack([
        tf.random.stateless_normal([D], seed=tf.constant([s, 7], tf.int64)).numpy() for s in seeds
    ])
    return z * np.asarray(temperature, np.float32).reshape(-1, 1) + np.asarray(condition).reshape(-1, 1)


def warmup_records(conditional=False):
    records = []
    for signature, inputs in [
        ("sample", {"seed": np.array([1, 2], np.int64)}),
        ("log_prob", {"x": np.zeros([2, D], np.float32)}),
    ]:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "warmup"
        request.model_spec.signature_name = signature
        if conditional and signature == "sample":
            inputs["condition"] = np.array([0, 1], np.int32)
        for k, v in inputs.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
        log = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        )
        records.append(log.SerializeToString())
    return records


def write_model(base_path, version, conditional=False, warmup=True, delay_ms=0,
                extra_warmup=()):
    """Export one version atomically: write to a temporary sibling, then rename."""
    module = ToyFlow(conditional, delay_ms)
    sample = _sample_fn(module, conditional)
    os.makedirs(base_path, exist_ok=True)
    tmp = os.path.join(base_path, f".tmp-{version}")
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(
        module,
        tmp,
        signatures={
            "sample": sample,
            "serving_default": sample,
            "log_prob": module.log_prob,
            "encode": module.encode,
            "decode": module.decode,
            "describe": module.describe,
        },
    )
    if warmup:
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with tf.io.TFRecordWriter(os.path.join(tmp, "assets.extra", "tf_serving_warmup_requests")) as w:
            for record in list(warmup_records(conditional)) + list(extra_warmup):
                w.write(record)
    final = os.path.join(base_path, str(version))
    os.rename(tmp, final)
    return final


def write_corrupt_version(base_path, version):
    path = os.path.join(base_path, str(version))
    os.makedirs(path)
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"\x08\x01this is not a SavedModel")
    return path


def copy_version(src, base_path, version):
    """Copy an exported version in under a temporary name, then rename (as an export)."""
    tmp = os.path.join(base_path, f".tmp-copy-{version}")
    shutil.copytree(src, tmp)
    final = os.path.join(base_path, str(version))
    os.rename(tmp, final)
    return final
