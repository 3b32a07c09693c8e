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
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)  # kept alive: the function does not own its variables
    outputs = signature_function(loaded, name, inputs, version_dir)(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def signature_function(loaded, name, input_names, version_dir="the export"):
    """The callable of signature `name` of a loaded export for a call with `input_names`.

    `loaded.signatures[...]` needs every input; the restored function of the same name
    fills the defaulted ones a call leaves out (an audio model's `length`), as a served
    model does. The caller keeps `loaded` alive while it uses the function."""
    if name not in loaded.signatures:
        raise UserError(f"{version_dir} has no signature {name!r}; it has {sorted(loaded.signatures)}")
    complete = set(input_names) == set(loaded.signatures[name].structured_input_signature[1])
    return loaded.signatures[name] if complete else getattr(loaded, name)
