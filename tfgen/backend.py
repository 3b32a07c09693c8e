"""The one place tfgen imports Keras and TensorFlow Probability.

tfgen uses Keras 2 (`tf_keras`): Keras 3 `fit` fails under MultiWorkerMirroredStrategy
(keras-team/keras#20585) and TFP is Keras-2 only. TF_USE_LEGACY_KERAS, set when the
`tfgen` package is imported (tfgen/__init__.py), makes TFP's own Keras references
resolve to tf_keras as well.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["tf", "keras", "tfp", "tfd", "tfb"]
