"""Datasets, loaders for user data and quantization."""

from tfgen.data.datasets import Dataset, Split, dataset_names, load_dataset, to_tf_dataset
from tfgen.data.spec import DataSpec

__all__ = ["Dataset", "Split", "DataSpec", "dataset_names", "load_dataset", "to_tf_dataset"]
