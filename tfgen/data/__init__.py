"""Datasets, loaders for user data and quantization."""
