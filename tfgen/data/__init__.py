"""Datasets, loaders for user data, and the data spec.

Importing the package registers the built-in datasets (`builtin`), the user-data
loaders (`loaders`) and the audio datasets (`audio`) with `datasets.load_dataset`.
"""

import importlib

from tfgen.data.datasets import Dataset, Split, dataset_names, load_dataset, to_tf_dataset
from tfgen.data.spec import DataSpec

for _module in ("audio", "builtin", "loaders"):  # they register their datasets
    importlib.import_module(f"tfgen.data.{_module}")

__all__ = ["Dataset", "Split", "DataSpec", "dataset_names", "load_dataset", "to_tf_dataset"]
