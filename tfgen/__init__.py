"""tfgen: train, export and serve deep generative models in TensorFlow."""

import os

# Before anything imports TensorFlow (the server, the scorer and the CLI import it
# without Keras): with it unset, `import tensorflow` also imports Keras 3, and through
# it scikit-learn and SciPy (about 2 CPU-seconds of every process's start), and
# tf.keras would be a second Keras. tfgen's one Keras is tf_keras (tfgen/backend.py).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__version__ = "0.1.0"
