"""Normalizing flows built from TFP bijectors and tfgen tf_keras networks."""
