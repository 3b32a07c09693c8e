"""The shipped autoregressive exports, rebuilt as tfgen models with their exported weights
(so tests can run the trained network's naive sampler and gradients)."""

import os

from tfgen.backend import tf
from tfgen.export.reader import list_versions, read_metadata
from tfgen.export.signatures import build_model, exported_variables
from tfgen.models.base import get_model_class

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")


def newest(name):
    base = os.path.join(ROOT, "saved_models", name)
    return os.path.join(base, str(max(list_versions(base))))


def rebuilt(version_dir):
    """The tfgen model of an export, from tfgen.json's config, with the export's weights
    (a SignatureModule checkpoints `exported_variables(model)` in model order)."""
    meta = read_metadata(version_dir)
    model = get_model_class(meta["class_name"]).from_config(meta["config"])
    build_model(model)
    reader = tf.train.load_checkpoint(os.path.join(version_dir, "variables", "variables"))
    for i, variable in enumerate(exported_variables(model)):
        variable.assign(reader.get_tensor(f"model_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"))
    return model
