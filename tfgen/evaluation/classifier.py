"""`tfgen train-classifier CONFIG --out DIR`: a feature network for the metrics, trained by tfgen.

The config (YAML, `yaml.safe_load`; unknown keys and wrong types are errors naming the
key) names the dataset, the network's arguments (`tfgen.metrics.features.build_classifier`)
and the training:

    data: {name: digits, seed: 0}          # the split the generative models use
    network: {conv_filters: [16, 32], feature_dim: 64, dropout: 0.25}
    training: {epochs: 100, batch_size: 64, learning_rate: 0.001, seed: 0}

The classifier is fitted on the train split only, for a fixed number of epochs (no model
selection on validation), so the validation and test splits stay data it never saw:
the reference figures compare them with each other. `DIR` gets `config.json` (the
network's arguments, its input, the per-unit mean and standard deviation of its feature
layer on the train split, which standardize the features, the training data, the
held-out accuracies) and
`weights.h5` (Keras weights; no pickle), which `tfgen.metrics.features.ClassifierFeatures`
loads. `DIR` must not exist: a shipped feature network is never overwritten.
"""

import dataclasses
import os

import numpy as np

from tfgen.errors import PathExists, UserError
from tfgen.training.config import DataConfig, parse_section, read_yaml


@dataclasses.dataclass
class ClassifierNetwork:
    """`tfgen.metrics.features.build_classifier` arguments."""

    conv_filters: list = dataclasses.field(default_factory=lambda: [16, 32])
    feature_dim: int = 64
    dropout: float = 0.25


@dataclasses.dataclass
class ClassifierTraining:
    """Adam on the softmax cross-entropy of the train split, `epochs` full passes."""

    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


@dataclasses.dataclass
class ClassifierConfig:
    data: DataConfig = None
    network: ClassifierNetwork = dataclasses.field(default_factory=ClassifierNetwork)
    training: ClassifierTraining = dataclasses.field(default_factory=ClassifierTraining)


def load_classifier_config(path):
    """A checked `ClassifierConfig` from a YAML file."""
    data = read_yaml(path, "classifier config")
    try:
        config = parse_section(ClassifierConfig, data if data is not None else {}, "")
        if config.data is None or not config.data.name:
            raise UserError("config key 'data.name' is required")
        filters = config.network.conv_filters
        if not filters or not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in filters):
            raise UserError(f"config key 'network.conv_filters' must be a list of positive integers, got {filters!r}")
        if config.network.feature_dim < 1 or not 0 <= config.network.dropout < 1:
            raise UserError("config keys 'network.feature_dim' must be >= 1 and 'network.dropout' in [0, 1)")
        t = config.training
        if t.epochs < 1 or t.batch_size < 1 or not t.learning_rate > 0:
            raise UserError("config keys 'training.epochs', 'training.batch_size' must be >= 1 and "
                            "'training.learning_rate' > 0")
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return config


def train_classifier(config, out_dir, log=print):
    """Trains the classifier of `config` and writes it to `out_dir` (module doc).

    Returns:
      The written `config.json` document (with "accuracy" per split).
    """
    from tfgen import __version__
    from tfgen.backend import keras, tf
    from tfgen.data.datasets import load_dataset
    from tfgen.files import atomic_directory, write_json
    from tfgen.metrics.features import CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS, build_classifier

    if os.path.exists(out_dir):
        raise PathExists(f"{out_dir} already exists: a feature network is never overwritten; name a new directory")
    dataset = load_dataset(config.data.to_load_dict())
    spec = dataset.spec
    if spec.kind != "image" or not spec.is_discrete or len(spec.event_shape) != 3:
        raise UserError(f"the classifier takes images with levels; {config.data.name} is {spec.kind} "
                        f"{list(spec.event_shape)} (levels {spec.levels})")
    train = dataset.splits["train"]
    if train.y is None:
        raise UserError(f"dataset {config.data.name!r} has no labels to train a classifier on")
    num_classes = int(max(split.y.max() for split in dataset.splits.values())) + 1
    t = config.training
    keras.utils.set_random_seed(t.seed)
    model = build_classifier(spec.event_shape, num_classes, **dataclasses.asdict(config.network))
    model.compile(optimizer=keras.optimizers.Adam(t.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    scale = np.float32(spec.levels - 1)
    batches = (tf.data.Dataset.from_tensor_slices((train.x / scale, train.y))
               .shuffle(len(train), seed=t.seed, reshuffle_each_iteration=True).batch(t.batch_size))
    log(f"training the classifier on {len(train)} {config.data.name} train examples, {t.epochs} epochs")
    model.fit(batches, epochs=t.epochs, verbose=2)
    # The features are standardized by the train split's statistics: raw ReLU units run to
    # ~25 in norm, where the cubic KID kernel (x.y / D + 1)^3 is dominated by a few rows.
    features = keras.Model(model.input, model.get_layer("features").output).predict(
        train.x / scale, batch_size=256, verbose=0).astype(np.float64)
    feature_scale = features.std(axis=0)
    feature_scale[feature_scale < 1e-6] = 1.0  # dead units stay 0
    accuracy = {}
    for name, split in dataset.splits.items():
        predicted = model.predict(split.x / scale, batch_size=256, verbose=0).argmax(axis=1)
        accuracy[name] = {"accuracy": float(np.mean(predicted == split.y)), "num_examples": len(split)}
    document = {
        "network": dataclasses.asdict(config.network),
        "event_shape": list(spec.event_shape), "levels": int(spec.levels), "num_classes": num_classes,
        "features_layer": "features",
        "feature_mean": features.mean(axis=0).tolist(), "feature_scale": feature_scale.tolist(),
        "training_data": config.data.to_load_dict(),
        "training": dataclasses.asdict(t),
        "accuracy": accuracy,
        "versions": {"tfgen": __version__, "tensorflow": tf.__version__},
    }
    with atomic_directory(out_dir) as tmp:
        model.save_weights(os.path.join(tmp, CLASSIFIER_WEIGHTS))
        write_json(os.path.join(tmp, CLASSIFIER_CONFIG), document)
    log("held-out accuracy: " + ", ".join(f"{name} {a['accuracy']:.4f} ({a['num_examples']} rows)"
                                          for name, a in accuracy.items()))
    return document
