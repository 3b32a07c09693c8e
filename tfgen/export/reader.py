"""Reading exports back: versions, tfgen.json, and calling `sample` in this process.

Like TF Serving, a reader needs only TensorFlow and the files: nothing here imports the
model code.
"""

import json
import os

import numpy as np

from tfgen.contract import SIGNATURES
from tfgen.errors import MissingPath, UserError
from tfgen.export.standalone import METADATA
from tfgen.versions import is_complete, version_dirs


def list_versions(base_path):
    """The complete versions under `base_path`, ascending ([] if none): those `tfgen serve` serves."""
    return sorted(version_dirs(base_path) or {})


def resolve_version(path):
    """`saved_models/NAME/VERSION` as given, or the newest version under `saved_models/NAME`.

    Versions are read as the server reads them (`tfgen.versions`): a version directory
    still being copied in (no saved_model.pb yet) is skipped, not picked.

    Raises:
      MissingPath: `path` does not exist or holds no version.
    """
    if not os.path.isdir(path):
        raise MissingPath(f"no model directory {path}")
    if is_complete(path):
        return path
    versions = version_dirs(path)
    if not versions:
        raise MissingPath(
            f"{path} holds no SavedModel and no integer version directory with a saved_model.pb"
        )
    return versions[max(versions)]


def read_metadata(version_dir):
    """The tfgen.json document of an export (see `saved_model.metadata_document`)."""
    path = os.path.join(version_dir, METADATA)
    if not os.path.isfile(path):
        raise MissingPath(f"{version_dir} has no {METADATA}: not a tfgen export")
    with open(path) as f:
        return json.load(f)


def sample_rows(num_samples, first_seed=0, temperature=1.0, condition=None, num_classes=None):
    """The `sample` signature inputs for seeds `first_seed .. first_seed + n - 1`, in the
    dtypes of the signature table (`tfgen.contract.SIGNATURES`).

    Args:
      num_samples: rows, >= 1.
      first_seed: the first int64 seed.
      temperature: >= 0, the same for every row.
      condition: class id for every row of a conditional model; None cycles through
        the classes 0, 1, ..., num_classes - 1.
      num_classes: the model's number of classes, None (or 0) if unconditional.
    """
    if num_samples < 1:
        raise UserError(f"the number of samples (-n) must be >= 1, got {num_samples}")
    if temperature < 0:
        raise UserError(f"temperature must be >= 0, got {temperature}")
    sample = SIGNATURES["sample"]

    def column(name, values):
        return np.asarray(values, sample.input(name).dtype)

    seed = np.arange(first_seed, first_seed + num_samples)
    inputs = {"seed": column("seed", seed), "temperature": column("temperature", np.full([num_samples], temperature))}
    if not num_classes:
        if condition is not None:
            raise UserError("this model is unconditional: drop the condition")
        return inputs
    if condition is None:
        inputs["condition"] = column("condition", np.arange(num_samples) % num_classes)
    elif not 0 <= condition < num_classes:
        raise UserError(f"condition must be in 0 .. {num_classes - 1}, got {condition}")
    else:
        inputs["condition"] = column("condition", np.full([num_samples], condition))
    return inputs


def call_signature(version_dir, name, inputs):
    """Loads the export and calls signature `name` on `{input: array}`; numpy outputs."""
    outputs = Export(version_dir).function(name)(**inputs)
    return {k: v.numpy() for k, v in outputs.items()}


def event_shape(dims):
    """A batched input's dims (`Export.describe`) without the batch dimension, None for
    unknown ones, as a TensorShape lists them."""
    return tuple(None if d < 0 else d for d in dims[1:])


class Export:
    """An export's signatures, to call in this process.

    Loaded as `tfgen serve` loads a version (`tfgen.serving.loader`): only the functions
    the signatures call, with 3-11x less CPU than `tf.saved_model.load`
    (docs/benchmarks.md, "Loading only what the signatures call"). As on a server, an
    input a call leaves out is filled from the SignatureDef's `defaults` (every sampler's
    `temperature`, an audio model's `length`). Keep the object alive while calling.

    Args:
      version_dir: a version directory, or a URL TensorFlow's file systems read.
    """

    def __init__(self, version_dir):
        from tfgen.serving import loader
        from tfgen.serving.signatures import Signature

        self.source = version_dir
        meta_graph = loader.read_meta_graph(version_dir)
        self._loaded = loader.load(version_dir, meta_graph)
        # The server's reading of each SignatureDef: input dims, decoded defaults.
        self._signatures = {k: Signature(k, meta_graph.signature_def[k], self._loaded.signatures[k])
                            for k in sorted(self._loaded.signatures)}
        self.signature_defs = {k: sig.signature_def for k, sig in self._signatures.items()}

    def describe(self, name):
        """{"inputs": {alias: (dtype name, shape)}, "outputs": ..., "defaults": [alias]} of
        signature `name` (`tfgen.serving.signatures.describe`, as a client sees it)."""
        from tfgen.serving.signatures import describe

        return describe(self._signature(name).signature_def)

    def _signature(self, name):
        if name not in self._signatures:
            raise UserError(f"{self.source} has no signature {name!r}; it has {sorted(self._signatures)}")
        return self._signatures[name]

    def function(self, name):
        """Signature `name` as a callable: keyword arrays or tensors -> {output alias:
        tensor}; the inputs it leaves out are taken from the SignatureDef's defaults."""
        import tensorflow as tf

        from tfgen.serving.signatures import fill_defaults

        signature, loaded = self._signature(name), self._loaded
        dims, infos = signature.input_dims, signature.inputs

        def run(**inputs):
            rows = next((int(v.shape[0]) for a, v in sorted(inputs.items())
                         if dims.get(a) and dims[a][0] == -1 and len(v.shape)), None)
            feeds = {a: v if isinstance(v, tf.Tensor) else tf.constant(v, tf.as_dtype(infos[a].dtype) if a in infos else None)
                     for a, v in fill_defaults(inputs, signature.defaults, dims, rows).items()}
            # Through `loaded`: a function of tf.saved_model.load's does not own its variables.
            return loaded.signatures[name](**feeds)

        return run
