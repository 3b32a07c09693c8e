"""Writing versioned SavedModels (docs/architecture.md, "The SavedModel contract").

    base_path/
      1/  saved_model.pb, variables/, assets.extra/{tfgen.json, tf_serving_warmup_requests}
      2/  ...

A version is a positive integer directory, as TF Serving expects. It is written to a
hidden temporary sibling (`.<version>.tmp-<pid>`, which TF Serving ignores: not an
integer; `tfgen.files.atomic_directory`) and renamed into place, so a reader polling `base_path` never sees a partial
version. Signatures are described in `tfgen.export.signatures`; the written graph is
compacted (`tfgen.export.compact`) before the version appears.

Example:

    path = export_model(model, "saved_models/digits_realnvp",
                        metadata={"training_data": {"dataset": "digits"},
                                  "metrics": {"test_bits_per_dim": 2.1}})
"""

import datetime
import json
import os

import tfgen
from tfgen.backend import tf, tfp
from tfgen.contract import FORMAT_VERSION, SIGNATURES, Capabilities
from tfgen.errors import UserError
from tfgen.export.compact import compact_saved_model
from tfgen.export.signatures import SignatureModule, build_model
from tfgen.export.standalone import METADATA, WARMUP, read_signature_defs
from tfgen.export.warmup import WARMUP_ROWS, write_warmup
from tfgen.files import atomic_directory
from tfgen.versions import parse_version, rolled_back_version

#: Keys `export_model(metadata=...)` accepts, each copied into tfgen.json.
METADATA_KEYS = ("training_data", "metrics", "lineage")
#: Custom gradients stay out: serving never differentiates, and a saved custom gradient
#: names tensors of its forward function, which `compact_saved_model` renames (a load
#: then fails). The cost: loaders log "Importing a function ... with ops with unsaved
#: custom gradients", and gradients through such ops fail in a loaded export.
SAVE_OPTIONS = tf.saved_model.SaveOptions(experimental_custom_gradients=False)


def export_model(model, base_path, version=None, metadata=None, warmup_rows=WARMUP_ROWS):
    """Exports `model` as `base_path/<version>/` and returns that directory.

    Args:
      model: a tfgen `GenerativeModel` (built or not: it is run once on one row first).
      base_path: the model's directory (e.g. `saved_models/<name>`); created if missing.
      version: positive int; None means one more than the largest existing version.
      metadata: optional dict with `training_data` (what the model was trained on; for a
        conditional model its `class_prior`, the training split's class frequencies, which
        the classify signature uses, uniform if absent), `metrics` (held-out results) and,
        for a fine-tuned version, `lineage` (`tfgen.publish.lineage`), all
        JSON-serializable; stored in tfgen.json.
      warmup_rows: batch sizes of the warmup requests (one request per signature each).

    Raises:
      PathExists: the version already exists (exports are never overwritten).
      UserError: bad version or metadata.
    """
    metadata = dict(metadata or {})
    unknown = sorted(set(metadata) - set(METADATA_KEYS))
    if unknown:
        raise UserError(f"unknown metadata key(s) {unknown}; accepted: {list(METADATA_KEYS)}")
    if version is None:
        version = next_version(base_path)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"version must be a positive integer, got {version!r}")

    final = os.path.join(base_path, str(version))
    with atomic_directory(final) as tmp:
        build_model(model)
        module = SignatureModule(model, (metadata.get("training_data") or {}).get("class_prior"))
        tf.saved_model.save(module, tmp, signatures=module.signatures(), options=SAVE_OPTIONS)
        compact_saved_model(tmp)
        set_method_names(tmp)
        os.makedirs(os.path.join(tmp, "assets.extra"))
        with open(os.path.join(tmp, METADATA), "w") as f:
            json.dump(metadata_document(model, read_signature_defs(tmp)[1], metadata), f, indent=2,
                      sort_keys=True)
        write_warmup(module, os.path.join(tmp, WARMUP), warmup_rows)
    return final


def set_method_names(export_dir):
    """Gives each SignatureDef its contract's method_name: `tf.saved_model.save` writes
    `tensorflow/serving/predict` for every signature, and TF Serving's Classify serves
    only signatures named `tensorflow/serving/classify`."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, "saved_model.pb")
    saved = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved.ParseFromString(f.read())
    changed = False
    for meta_graph in saved.meta_graphs:
        for name, signature_def in meta_graph.signature_def.items():
            method = SIGNATURES[name].method if name in SIGNATURES else signature_def.method_name
            if signature_def.method_name != method:
                signature_def.method_name = method
                changed = True
    if changed:
        with open(path, "wb") as f:
            f.write(saved.SerializeToString())


def next_version(base_path):
    """One more than the largest version number under `base_path`, counting directories
    still being copied in (a complete-only count would pick a number already taken) and
    rolled-back ones (a number a server has served is never reused)."""
    names = os.listdir(base_path) if os.path.isdir(base_path) else []
    numbers = [parse_version(name) or rolled_back_version(name) for name in names]
    return max((v for v in numbers if v is not None), default=0) + 1


def metadata_document(model, signature_defs, metadata=None):
    """The tfgen.json document of `model`: what a reader needs without tfgen's code.

    Args:
      model: the exported model.
      signature_defs: `{name: SignatureDef}` as saved (see `standalone.read_signature_defs`).
      metadata: the `export_model` metadata dict.
    """
    metadata = metadata or {}
    capabilities = Capabilities.of_model(model)
    return {
        "format_version": FORMAT_VERSION,
        "family": model.family,
        "class_name": type(model).__name__,
        "config": model.get_config(),
        "data_spec": model.data_spec.to_dict(),
        "log_prob_kind": capabilities.log_prob_kind.value,
        "log_prob_samples": model.log_prob_samples,
        "has_latent": capabilities.has_latent,
        "has_encoder": capabilities.has_encoder,
        "latent_shape": list(capabilities.latent_shape),
        "stochastic_encoder": capabilities.stochastic_encoder,
        "variable_length": capabilities.variable_length,
        "sample_inputs": dict(capabilities.sample_inputs),
        "classify_estimate": model.classify_estimate if capabilities.num_classes else None,
        "signatures": {name: {"inputs": sorted(s.inputs), "outputs": sorted(s.outputs)}
                       for name, s in signature_defs.items() if not name.startswith("__")},
        "training_data": metadata.get("training_data"),
        "metrics": metadata.get("metrics"),
        "lineage": metadata.get("lineage"),
        "versions": {"tfgen": tfgen.__version__, "tensorflow": tf.__version__,
                     "tensorflow_probability": tfp.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
