"""Datasets, loaders for user data, and the data spec.

Importing the package registers the built-in datasets (`builtin`), the user-data
loaders (`loaders`) and the audio datasets (`audio`) with `datasets.load_dataset`.
"""

from tfgen.data import audio, builtin, loaders  # noqa: F401  (register their datasets)
from tfgen.data.datasets import Dataset, Split, dataset_names, load_dataset, to_tf_dataset
from tfgen.data.spec import DataSpec

__all__ = ["Dataset", "Split", "DataSpec", "dataset_names", "load_dataset", "to_tf_dataset"]
