"""tfgen: train, export and serve deep generative models in TensorFlow."""

__version__ = "0.1.0"
