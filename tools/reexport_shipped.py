"""Re-exports the shipped models in place with the same weights and today's export code.

    .venv/bin/python tools/reexport_shipped.py [--dry-run | --out DIR] [NAME ...]

For each shipped model (default: every directory under saved_models/), it

1. rebuilds the model from the newest version's tfgen.json (class and config) and
   assigns it the variables of that export, in order, checking count, shapes and the
   layer/weight part of every name (so a model whose layout changed is refused);
2. exports it with `tfgen.export.saved_model.export_model` to a temporary base path,
   keeping the old tfgen.json's `training_data`, `metrics` and `created` (the weights,
   and what was measured of them, are unchanged);
3. calls every signature of the old and the new export on the reference inputs of
   tests/reference/record_shipped_reference.py and refuses to go on unless they agree
   to float32 rounding (relative 1e-6, absolute 1e-5 near 0; `--rtol` widens the
   relative part for a graph that computes the same sum in another order, e.g. the
   DDPM's bound over chunks of timesteps, 1000 terms: relative 2e-6);
4. replaces the version directory (renames: the old one aside, the new one in, the
   old one deleted). Between the two renames the version is missing, so stop a server
   polling saved_models/ (or let it reload) rather than run this under it.

Exports are otherwise never overwritten (`export_model` refuses an existing version);
this script is the deliberate exception, for changes of the export format that leave
the model alone. `--dry-run` stops after step 3 and prints the sizes; `--out DIR` writes the new export
to `DIR/NAME` instead of step 4 (refusing an existing one).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

from record_shipped_reference import answers, reference_inputs  # noqa: E402

from tfgen.backend import tf  # noqa: E402
from tfgen.contract import Capabilities  # noqa: E402
from tfgen.export.reader import read_metadata, resolve_version  # noqa: E402
from tfgen.export.saved_model import export_model  # noqa: E402
from tfgen.export.signatures import build_model, exported_variables  # noqa: E402
from tfgen.export.standalone import METADATA  # noqa: E402
from tfgen.models.base import model_from_config  # noqa: E402

RTOL, ATOL = 1e-6, 1e-5
AUDIO_LENGTH = 256  # samples drawn per row when comparing audio models


def restore(version_dir):
    """A freshly built model holding the weights of the export at `version_dir`."""
    meta = read_metadata(version_dir)
    model = model_from_config(meta["class_name"], meta["config"])
    build_model(model)
    fresh = exported_variables(model)
    saved = list(tf.saved_model.load(version_dir).model_variables)
    if len(saved) != len(fresh):
        raise SystemExit(f"{version_dir}: {len(saved)} saved variables, the rebuilt model has {len(fresh)}")
    for old, new in zip(saved, fresh):
        # Scope prefixes depend on which method built a layer first; the layer and
        # weight names do not.
        if old.shape != new.shape or old.name.split("/")[-2:] != new.name.split("/")[-2:]:
            raise SystemExit(f"{version_dir}: saved {old.name} {old.shape} does not match "
                             f"rebuilt {new.name} {new.shape}")
        new.assign(old)
    return model, meta


def _answers(version_dir, inputs):
    """`answers` of the reference, for any shipped model: its classes when conditional,
    encode/decode only where the export has them."""
    loaded = tf.saved_model.load(version_dir)
    if "encode" in loaded.signatures and "seed" not in loaded.signatures["encode"].structured_input_signature[1]:
        return answers(version_dir, inputs)
    condition = {"condition": tf.constant(inputs["condition"])} if "condition" in inputs else {}
    extra = {}
    if "length" in loaded.signatures["sample"].structured_input_signature[1]:
        # Audio: a short draw (every step runs the network), scored as the data rows.
        extra["length"] = tf.fill([len(inputs["seed"])], AUDIO_LENGTH)
    # Iterative samplers (diffusion and score models): the settings at their defaults.
    specs = loaded.signatures["sample"].structured_input_signature[1]
    for key, default in Capabilities.from_metadata(read_metadata(version_dir)).sample_inputs:
        extra[key] = tf.fill([len(inputs["seed"])], tf.cast(default, specs[key].dtype))
    out = {}
    sample = loaded.signatures["sample"](seed=tf.constant(inputs["seed"]),
                                         temperature=tf.constant(inputs["temperature"]),
                                         **condition, **extra)
    out.update({f"sample/{k}": v.numpy() for k, v in sample.items()})
    if "length" in extra:
        inputs = dict(inputs, x=out["sample/samples"])
    if "log_prob" in loaded.signatures:
        log_prob = loaded.signatures["log_prob"](x=tf.constant(inputs["x"]), **condition)
        out.update({f"log_prob/{k}": v.numpy() for k, v in log_prob.items()})
    return out


def compare(name, old_dir, new_dir, rtol=RTOL):
    """Largest relative difference over every output; exits if any is beyond tolerance."""
    inputs = reference_inputs(name)
    if read_metadata(old_dir)["data_spec"].get("num_classes") and "condition" not in inputs:
        inputs["condition"] = np.arange(len(inputs["seed"]), dtype=np.int32) % read_metadata(old_dir)["data_spec"]["num_classes"]
    old, new = _answers(old_dir, inputs), _answers(new_dir, inputs)
    worst = 0.0
    for key, expected in old.items():
        got = new[key]
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=rtol, atol=ATOL):
            raise SystemExit(f"{name}: {key} differs between {old_dir} and {new_dir}: "
                             f"max abs diff {np.max(np.abs(got - expected))}")
        scale = np.maximum(np.abs(expected), ATOL / RTOL)
        worst = max(worst, float(np.max(np.abs(got - expected) / scale)))
    return worst


def reexport(name, dry_run=False, out=None, rtol=RTOL):
    """Re-export saved_models/NAME in place, or into the new base path `out`/NAME."""
    base = os.path.join(ROOT, "saved_models", name)
    old_dir = resolve_version(base)
    version = int(os.path.basename(old_dir))
    model, meta = restore(old_dir)
    staging = tempfile.mkdtemp(prefix=f".reexport-{name}-", dir=os.path.dirname(base))
    try:
        metadata = {k: meta[k] for k in ("training_data", "metrics")}
        num_classes = meta["data_spec"].get("num_classes")
        if num_classes and "class_prior" not in metadata["training_data"]:
            # The Bayes classifier's p(y): the class frequencies of the training split the
            # model was trained on (the split is seeded, so it is the same one).
            from tfgen.data.datasets import load_dataset
            from tfgen.export.signatures import class_frequencies

            metadata["training_data"] = dict(metadata["training_data"], class_prior=class_frequencies(
                load_dataset(meta["training_data"]["data"]).splits["train"].y, num_classes))
        new_dir = export_model(model, os.path.join(staging, name), version=version, metadata=metadata)
        doc = read_metadata(new_dir)
        doc["created"] = meta["created"]
        with open(os.path.join(new_dir, METADATA), "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
        worst = compare(name, old_dir, new_dir, rtol)
        sizes = [os.path.getsize(os.path.join(d, "saved_model.pb")) for d in (old_dir, new_dir)]
        print(f"{name}: saved_model.pb {sizes[0]} -> {sizes[1]} bytes; outputs agree "
              f"(largest relative difference {worst:.2e})", flush=True)
        if dry_run:
            return
        if out:
            target = os.path.join(out, name)
            if os.path.exists(target):
                raise SystemExit(f"{target} exists: --out never overwrites")
            os.makedirs(out, exist_ok=True)
            shutil.move(os.path.join(staging, name), target)
            print(f"{name}: written to {target}", flush=True)
            return
        aside = os.path.join(base, f".old-{version}-{os.getpid()}")
        os.rename(old_dir, aside)
        os.rename(new_dir, old_dir)
        shutil.rmtree(aside)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="model names under saved_models/ (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="export and compare, replace nothing")
    parser.add_argument("--out", metavar="DIR",
                        help="write the re-export to DIR/NAME (a new base path) and leave "
                             "saved_models/ alone, e.g. to benchmark today's export code")
    parser.add_argument("--rtol", type=float, default=RTOL,
                        help=f"relative tolerance of the old and new answers (default {RTOL}: float32 "
                             "rounding); wider only for a graph that sums the same terms in another order")
    args = parser.parse_args(argv)
    names = args.names or sorted(n for n in os.listdir(os.path.join(ROOT, "saved_models"))
                                 if not n.startswith("."))
    for name in names:
        reexport(name, args.dry_run, args.out, args.rtol)


if __name__ == "__main__":
    main()
