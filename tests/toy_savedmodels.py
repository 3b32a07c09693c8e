"""Real SavedModels shaped like tfgen exports, built from plain tf.Module + tf.function,
for the serving and scoring tests.

Shaped like tfgen's export contract (docs/architecture.md, "The SavedModel contract") but
independent of tfgen.models, as the server and `tfgen score` are: a Gaussian density
N(shift + class, scale^2 I) over x of any event shape (default 2-D points).

- `log_prob`: x float32 [B, *event] (, condition int32 [B] if conditional) -> log_prob,
  bits_per_dim
- `sample`: seed int64 [B], temperature float32 [B] (SignatureDef default [1.0]),
  condition int32 [B] if conditional -> samples (stateless normal keyed by the seed,
  times temperature and scale, plus shift and class), log_prob
- `encode`/`decode`: identity; `serving_default` = `sample`
- `echo`: text string [B] -> length int32, echo_bytes string (binary data tests)
"""

import math
import os
import shutil

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

D = 2
NUM_CLASSES = 3
LOG_2PI = math.log(2 * math.pi)


def log_prob_np(x, condition=None, scale=1.0):
    """What the log_prob signature returns, in numpy: (log_prob, bits_per_dim)."""
    x = np.asarray(x, np.float32)
    x = x.reshape(len(x), -1)
    if condition is not None:
        x = x - np.asarray(condition, np.float32)[:, None]
    dims = x.shape[1]
    lp = np.sum(-0.5 * np.square(x / scale) - math.log(scale), axis=-1) - 0.5 * dims * LOG_2PI
    return lp.astype(np.float32), (-lp / (dims * math.log(2))).astype(np.float32)


class ToyFlow(tf.Module):
    """The Gaussian density above as a tf.Module with one tf.function per signature.

    Args:
      conditional: the mean is shifted by the class id, fed as `condition`.
      delay_ms: fixed work per call (what batching amortizes in real models).
      event_shape: shape of one example.
      scale: standard deviation of every dimension.
    """

    def __init__(self, conditional=False, delay_ms=0, event_shape=(D,), scale=1.0):
        super().__init__()
        self.conditional = conditional
        self.delay_ms = delay_ms
        self.event_shape = tuple(event_shape)
        self.dims = int(np.prod(self.event_shape))
        self.shift = tf.Variable(0.0, name="shift")  # real variables to restore
        self.scale = tf.Variable(float(scale), name="scale")
        self.weights = tf.Variable(tf.eye(256) * 0.5, name="weights")
        x = tf.TensorSpec([None, *self.event_shape], tf.float32, name="x")
        condition = [tf.TensorSpec([None], tf.int32, name="condition")] if conditional else []
        self.log_prob = tf.function(self._log_prob_outputs, input_signature=[x, *condition])
        self.encode = tf.function(lambda x: {"z": tf.identity(x)}, input_signature=[x])
        self.decode = tf.function(lambda z: {"x": tf.identity(z)},
                                  input_signature=[tf.TensorSpec([None, *self.event_shape], tf.float32, name="z")])

    def _fixed_cost(self):
        # A fixed amount of work per call, whatever the batch: what batching amortizes
        # in real models (a network's weights are read once per call).
        m = self.weights  # a variable, so Grappler cannot fold the products away
        for _ in range(self.delay_ms):
            m = tf.linalg.matmul(m, m)
        return tf.reduce_sum(m) * 0.0

    def _mean(self, condition):
        if condition is None:
            return self.shift
        check = tf.debugging.assert_less(condition, NUM_CLASSES, message="condition out of range")
        with tf.control_dependencies([check]):
            return self.shift + tf.cast(condition, tf.float32)[:, None]

    def _log_prob(self, x, condition=None):
        x = tf.reshape(x, [-1, self.dims]) - self._mean(condition)
        lp = tf.reduce_sum(-0.5 * tf.square(x / self.scale) - tf.math.log(self.scale), axis=-1) \
            - 0.5 * self.dims * LOG_2PI
        if self.delay_ms:
            lp = lp + self._fixed_cost()
        return lp, -lp / (self.dims * math.log(2.0))

    def _log_prob_outputs(self, x, condition=None):
        lp, bpd = self._log_prob(x, condition)
        return {"log_prob": lp, "bits_per_dim": bpd}

    def _noise(self, seed):
        return tf.map_fn(
            lambda s: tf.random.stateless_normal([self.dims], seed=tf.stack([s, tf.constant(7, tf.int64)])),
            seed,
            fn_output_signature=tf.TensorSpec([self.dims], tf.float32),
        )

    def _sample(self, seed, temperature, condition=None):
        z = self._noise(seed) * temperature[:, None] * self.scale + self._mean(condition)
        if self.delay_ms:
            z = z + self._fixed_cost()
        lp, _ = self._log_prob(z, condition)
        return {"samples": tf.reshape(z, [-1, *self.event_shape]), "log_prob": lp}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def echo(self, text):
        return {"length": tf.strings.length(text), "echo_bytes": tf.identity(text)}


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


def warmup_records(conditional=False, event_shape=(D,)):
    records = []
    for signature, inputs in [
        ("sample", {"seed": np.array([1, 2], np.int64)}),
        ("log_prob", {"x": np.zeros([2, *event_shape], np.float32)}),
    ]:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "warmup"
        request.model_spec.signature_name = signature
        if conditional:
            inputs["condition"] = np.array([0, 1], np.int32)
        for k, v in inputs.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
        log = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        )
        records.append(log.SerializeToString())
    return records


def write_model(base_path, version, conditional=False, warmup=True, delay_ms=0,
                extra_warmup=(), event_shape=(D,), scale=1.0):
    """Export one version atomically: write to a temporary sibling, then rename."""
    module = ToyFlow(conditional, delay_ms, event_shape, scale)
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
            "echo": module.echo,
        },
    )
    if warmup:
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with tf.io.TFRecordWriter(os.path.join(tmp, "assets.extra", "tf_serving_warmup_requests")) as w:
            for record in list(warmup_records(conditional, event_shape)) + list(extra_warmup):
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
