"""Feature networks: the spaces sample-quality metrics (`tfgen.metrics.sample_quality`) are
computed in.

`load_feature_network(name, weights=None)` returns a `FeatureNetwork`; its
`features(x, spec)` maps raw examples (as the dataset holds them, described by their
`DataSpec`) to float64 `[N, D]` features. Names:

- `digits_classifier`: the small convolutional digits classifier shipped in
  `tfgen/metrics/networks/digits_classifier/` (trained by `tfgen train-classifier
  tf_configs/digits_classifier.yaml` on the digits train split only, so the validation
  and test digits are data it never saw). Features: its penultimate layer (64 ReLU units),
  standardized per unit by their train-split mean and standard deviation (so KID's cubic
  kernel sees values of order 1, as with Inception's pool features).
  Input: 8x8x1 images with 17 levels, scaled by 1/16 to [0, 1]. A directory written by
  `tfgen train-classifier` works in place of the name.
- `inception_v3`: Keras' InceptionV3 (`tf_keras.applications`, built with
  `weights=None`) with the weights of the Keras `.h5` file the user names (`weights=`;
  never downloaded): the ImageNet file with or without its top
  (`inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5`). Features: the 2048
  outputs of the global average pool (`avg_pool`, "pool3"), the layer FID uses.
  Preprocessing, exactly: values to [0, 1] (discrete data: x / (levels - 1); continuous:
  (x - low) / (high - low) by the spec's range), then to [-1, 1] as 2u - 1 (what
  `inception_v3.preprocess_input` does to 0..255 pixels); one-channel images repeated to
  three; resized to 299x299 by `tf.image.resize(method="bilinear", antialias=False)`
  (half-pixel centres), in float32. FIDs from other implementations (pytorch-fid's
  resize, TF1's graph) differ by that choice: compare figures computed here.
- `raw`: the examples themselves, flattened (2-D toys: the points).

Example:

    net = load_feature_network("digits_classifier")
    real = net.features(dataset.splits["test"].x, dataset.spec)   # [N, 64]
"""

import json
import os

import numpy as np

from tfgen.errors import MissingPath, UserError

NETWORKS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "networks")
FEATURE_NETWORKS = ("digits_classifier", "inception_v3", "raw")
CLASSIFIER_CONFIG = "config.json"
CLASSIFIER_WEIGHTS = "weights.h5"
INCEPTION_SIZE = 299
FEATURE_BATCH = 256


def unit_range(x, spec):
    """Raw examples scaled to [0, 1]: by the levels (discrete) or the spec's low/high."""
    x = np.asarray(x, np.float32)
    if spec.is_discrete:
        return x / np.float32(spec.levels - 1)
    if spec.low is None or spec.high is None or not spec.high > spec.low:
        raise UserError(f"continuous {spec.kind} data needs a value range (low, high) for this feature network")
    return (x - np.float32(spec.low)) / np.float32(spec.high - spec.low)


class FeatureNetwork:
    """A map from raw examples to `[N, D]` features.

    Attributes:
      name: what `load_feature_network` was given.
      dimension: D.
      preprocessing: how examples are prepared, in words (reported with the metrics).
    """

    name = None
    dimension = None
    preprocessing = None

    def check(self, spec):
        """Raises a `UserError` if this network cannot take examples of `spec`."""

    def features(self, x, spec, batch_size=FEATURE_BATCH):
        """float64 `[N, D]` features of raw examples `x` `[N, *spec.event_shape]`."""
        raise NotImplementedError

    def _batched(self, function, x, batch_size):
        from tfgen.backend import tf

        parts = [function(tf.constant(x[start:start + batch_size])).numpy()
                 for start in range(0, len(x), batch_size)]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros([0, self.dimension])


class RawFeatures(FeatureNetwork):
    """The examples themselves, flattened."""

    name = "raw"
    preprocessing = "none (the examples, flattened)"

    def features(self, x, spec, batch_size=FEATURE_BATCH):
        x = np.asarray(x, np.float64)
        self.dimension = int(np.prod(x.shape[1:]))
        return x.reshape(len(x), -1)


# === The digits classifier ===

def build_classifier(event_shape, num_classes, conv_filters=(16, 32), feature_dim=64, dropout=0.25):
    """The classifier network: 3x3 ReLU convolutions (the second and later with stride 2),
    a `feature_dim` ReLU layer named "features" (the metrics' feature space), dropout,
    and `num_classes` logits (layer "logits"). Input in [0, 1]."""
    from tfgen.backend import keras

    inputs = keras.Input(shape=tuple(event_shape), name="x")
    h = inputs
    for i, filters in enumerate(conv_filters):
        h = keras.layers.Conv2D(filters, 3, strides=1 if i == 0 else 2, padding="same", activation="relu",
                                name=f"conv{i + 1}")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    features = keras.layers.Dense(feature_dim, activation="relu", name="features")(h)
    h = keras.layers.Dropout(dropout, name="dropout")(features)
    logits = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, logits, name="classifier")


class ClassifierFeatures(FeatureNetwork):
    """A classifier written by `tfgen train-classifier`: `config.json` (its network's
    arguments, input spec, training data and held-out accuracy) and `weights.h5`.

    Args:
      directory: the classifier's directory.
      name: reported name (default: the directory's).
    """

    def __init__(self, directory, name=None):
        from tfgen.backend import keras, tf

        config_path = os.path.join(directory, CLASSIFIER_CONFIG)
        weights_path = os.path.join(directory, CLASSIFIER_WEIGHTS)
        for path in (config_path, weights_path):
            if not os.path.isfile(path):
                raise MissingPath(f"{directory} is not a feature network directory: no {os.path.basename(path)}")
        with open(config_path) as f:
            self.config = json.load(f)
        self.name = name or os.path.basename(os.path.normpath(directory))
        self.event_shape = tuple(self.config["event_shape"])
        self.levels = int(self.config["levels"])
        self.num_classes = int(self.config["num_classes"])
        self.model = build_classifier(self.event_shape, self.num_classes, **self.config["network"])
        self.model.load_weights(weights_path)
        feature_model = keras.Model(self.model.input, self.model.get_layer("features").output)
        self.dimension = int(feature_model.output.shape[-1])
        mean = tf.constant(self.config["feature_mean"], tf.float32)
        scale = tf.constant(self.config["feature_scale"], tf.float32)
        self.preprocessing = (f"x / {self.levels - 1} (levels 0 .. {self.levels - 1} to [0, 1]); penultimate "
                              "layer standardized by its train-split mean and standard deviation")
        # No autograph: it would re-read this file's source while tracing.
        self._features = tf.function(lambda x: (feature_model(x / (self.levels - 1), training=False) - mean) / scale,
                                     autograph=False, reduce_retracing=True)
        self._logits = tf.function(lambda x: self.model(x / (self.levels - 1), training=False),
                                   autograph=False, reduce_retracing=True)

    @property
    def training_data(self):
        """The dataset config the classifier was trained on (its train split only)."""
        return self.config["training_data"]

    def check(self, spec):
        if spec.event_shape != self.event_shape or spec.levels != self.levels:
            raise UserError(f"feature network {self.name} takes {list(self.event_shape)} images with "
                            f"{self.levels} levels; the data is {list(spec.event_shape)} with levels {spec.levels}")

    def features(self, x, spec, batch_size=FEATURE_BATCH):
        self.check(spec)
        return self._batched(self._features, np.asarray(x, np.float32), batch_size)

    def classify(self, x, spec, batch_size=FEATURE_BATCH):
        """The most probable class of each example: int `[N]`."""
        self.check(spec)
        return self._batched(self._logits, np.asarray(x, np.float32), batch_size).argmax(axis=1)


# === InceptionV3 ===

class InceptionFeatures(FeatureNetwork):
    """InceptionV3's 2048 pool features, weights from a local Keras `.h5` file (module doc).

    Args:
      weights: path of the weights file (with or without the classification top).
    """

    name = "inception_v3"
    dimension = 2048
    preprocessing = (f"to [0, 1] by the levels or value range, then 2u - 1; grey repeated to RGB; "
                     f"tf.image.resize to {INCEPTION_SIZE}x{INCEPTION_SIZE} bilinear, antialias off; "
                     "features: avg_pool (2048)")

    def __init__(self, weights):
        from tfgen.backend import keras, tf

        if not weights:
            raise UserError("inception_v3 needs its weights file: give --inception-weights FILE.h5 "
                            "(Keras' ImageNet InceptionV3 weights; nothing is downloaded)")
        if not os.path.isfile(weights):
            raise MissingPath(f"no InceptionV3 weights file {weights}")
        self.weights = weights
        include_top = _has_classification_top(weights)
        model = keras.applications.InceptionV3(
            include_top=include_top, weights=None, pooling=None if include_top else "avg",
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
        try:
            model.load_weights(weights)
        except (ValueError, OSError) as e:
            raise UserError(f"{weights} holds no InceptionV3 weights: {' '.join(str(e).split())[:200]}") from None
        # "avg_pool" with the top; the "notop" model ends in the same global average pool.
        pool = model.get_layer("avg_pool").output if include_top else model.output
        feature_model = keras.Model(model.input, pool)

        def features(x):
            x = x * 2.0 - 1.0
            if x.shape[-1] == 1:
                x = tf.repeat(x, 3, axis=-1)
            x = tf.image.resize(x, [INCEPTION_SIZE, INCEPTION_SIZE], method="bilinear", antialias=False)
            return feature_model(x, training=False)

        self._features = tf.function(features, autograph=False, reduce_retracing=True)

    def check(self, spec):
        if spec.kind != "image" or len(spec.event_shape) != 3 or spec.event_shape[-1] not in (1, 3):
            raise UserError(f"inception_v3 takes images with 1 or 3 channels; the data is {spec.kind} "
                            f"{list(spec.event_shape)}")

    def features(self, x, spec, batch_size=32):
        self.check(spec)
        return self._batched(self._features, unit_range(x, spec), batch_size)


def _has_classification_top(path):
    """Whether a Keras .h5 weights file holds InceptionV3's "predictions" layer."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs.get("layer_names", [])]
    except OSError:
        raise UserError(f"{path} is not a Keras .h5 weights file") from None
    if "mixed10" not in names:
        raise UserError(f"{path} holds no InceptionV3 weights (no layer 'mixed10')")
    return "predictions" in names


def load_feature_network(name, weights=None):
    """A `FeatureNetwork` by name (module doc), or a `tfgen train-classifier` directory.

    Args:
      name: "digits_classifier", "inception_v3", "raw", or a classifier directory.
      weights: the InceptionV3 weights file (`inception_v3` only).
    """
    if weights is not None and name != "inception_v3":
        raise UserError(f"a weights file is for inception_v3, not {name!r}")
    if name == "raw":
        return RawFeatures()
    if name == "inception_v3":
        return InceptionFeatures(weights)
    if name in FEATURE_NETWORKS:
        return ClassifierFeatures(os.path.join(NETWORKS_DIR, name), name)
    if os.path.isdir(name):
        return ClassifierFeatures(name)
    raise UserError(f"unknown feature network {name!r}; known: {', '.join(FEATURE_NETWORKS)} "
                    "(or a directory written by tfgen train-classifier)")


def default_feature_network(spec):
    """The network `tfgen evaluate` uses unless told: the digits classifier for 8x8 digits
    images, `raw` for 2-D points, else None (the user must name one)."""
    if spec.kind == "image" and spec.event_shape == (8, 8, 1) and spec.levels == 17:
        return "digits_classifier"
    if spec.kind == "vector" and spec.num_dims <= 16:
        return "raw"
    return None
