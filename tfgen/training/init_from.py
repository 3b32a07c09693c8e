"""Fine-tuning an exported version: `tfgen train CONFIG --init-from saved_models/NAME[/VERSION]`
(docs/architecture.md, "Retraining and publishing").

`FineTune.from_config(config)` reads the parent export (its tfgen.json) before anything
else happens; the trainer then asks it, at its own steps,

    model_config(run's model config)   the export's config, once the run's data and
                                       model are checked to agree with it
    prepare(model, evaluate)           the export's weights into the built model, the
                                       frozen parts, the parent's held-out figures
    decide(model, metrics)             publish or not: the fine-tuned figures against the
                                       parent's on the same split, printed side by side
    lineage(dataset, metrics)          what the published version records

Every check that can refuse (not an export, no such version, another model class or
configuration, data of another shape or levels, an unknown part to freeze) runs before
training and before the run directory is written. Weights come from the SavedModel's
own checkpoint (`variables/`): the export's object graph holds the model's variables as
`model_variables/<i>` in the model's order (`tfgen.export.signatures.SignatureModule`),
which `tf.train.Checkpoint` reads into a model rebuilt from the same class and config,
so the restored model computes what the export computes, bit for bit. An export holds
no optimizer state: the optimizers start afresh (at the config's, typically lower,
learning rate).
"""

import dataclasses
import json
import os

from tfgen.errors import MissingPath, UserError

#: The data spec fields a model's weights depend on; the value range of continuous data
#: (`low`, `high`, for plots and input checks) may differ.
SPEC_FIELDS = ("event_shape", "kind", "levels", "num_classes", "sample_rate")


def log(message):
    print(f"tfgen train: {message}", flush=True)


@dataclasses.dataclass
class Parent:
    """The export a run starts from.

    Attributes:
      given: the `--init-from` path as given.
      base_path: its base path, where the fine-tuned version is published.
      version: its version number.
      version_dir: `base_path/version`.
      metadata: its tfgen.json.
    """

    given: str
    base_path: str
    version: int
    version_dir: str
    metadata: dict


def read_parent(path):
    """The `Parent` at `saved_models/NAME/VERSION`, or the newest version of `saved_models/NAME`."""
    from tfgen.export.reader import read_metadata
    from tfgen.versions import is_complete, parse_version, version_dirs

    where = f"--init-from {path}"
    trimmed = os.path.normpath(path)
    if not os.path.isdir(trimmed):
        base, leaf = os.path.split(trimmed)
        versions = version_dirs(base) if base else None
        if parse_version(leaf) is not None and versions is not None:
            raise MissingPath(f"{where}: no version {leaf} under {base}; it has "
                              f"{sorted(versions) if versions else 'no complete version'}")
        raise MissingPath(f"{where}: no such directory")
    if is_complete(trimmed):
        base, leaf = os.path.split(trimmed)
        version = parse_version(leaf)
        if version is None:
            raise UserError(f"{where}: a SavedModel outside a versioned base path (its directory must be named by "
                            "its version number, e.g. saved_models/NAME/1)")
    else:
        versions = version_dirs(trimmed)
        if not versions:
            raise UserError(f"{where}: not a tfgen export (no saved_model.pb, and no version directory holding one)")
        base, version = trimmed, max(versions)
        trimmed = versions[version]
    try:
        metadata = read_metadata(trimmed)
    except MissingPath as e:
        raise UserError(f"{where}: {e}") from None
    except ValueError as e:
        raise UserError(f"{where}: its tfgen.json is not valid JSON ({e})") from None
    missing = [key for key in ("class_name", "config", "data_spec") if key not in metadata]
    if missing:
        raise UserError(f"{where}: its tfgen.json lacks {missing}: not an export tfgen can rebuild")
    return Parent(path, base or ".", version, trimmed, metadata)


def _normalized(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _differences(ours, theirs, prefix):
    """'key ours (export: theirs)' for every key whose values differ."""
    ours, theirs = _normalized(ours), _normalized(theirs)
    return [f"{prefix}{key} {json.dumps(ours.get(key))} (export: {json.dumps(theirs.get(key))})"
            for key in sorted(set(ours) | set(theirs)) if ours.get(key) != theirs.get(key)]


def restore_weights(model, version_dir):
    """Reads an export's variables into `model` (built, of the export's class and config).

    Raises:
      UserError: the export's variables do not match the model's one to one (count or
        shapes), naming the first mismatch.
    """
    from tfgen.backend import tf
    from tfgen.export.signatures import exported_variables

    prefix = os.path.join(version_dir, "variables", "variables")
    variables = exported_variables(model)
    saved = {name: shape for name, shape in tf.train.list_variables(prefix) if name.startswith("model_variables/")}
    if len(saved) != len(variables):
        raise UserError(f"--init-from {version_dir}: the export holds {len(saved)} model variables, the rebuilt model "
                        f"{len(variables)}")
    for i, variable in enumerate(variables):
        shape = saved.get(f"model_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE")
        if shape != variable.shape.as_list():
            raise UserError(f"--init-from {version_dir}: variable {i} ({variable.name}) has shape "
                            f"{variable.shape.as_list()}, the export's {shape}")
    tf.train.Checkpoint(model_variables=variables).read(prefix).assert_existing_objects_matched()


class FineTune:
    """The fine-tuning side of one training run (see the module docstring).

    Args:
      config: the run's `TrainConfig`.
      parent: the `Parent` export, or None for a run from scratch (then only `freeze`
        applies).
    """

    def __init__(self, config, parent=None):
        self.config = config
        self.options = config.fine_tune
        self.parent = parent
        self.parent_figures = None
        self.comparison = None

    @classmethod
    def from_config(cls, config):
        """Reads `fine_tune.init_from` (if any) and points the export at its base path."""
        options = config.fine_tune
        if options.init_from is None:
            return cls(config)
        parent = read_parent(options.init_from)
        class_name = parent.metadata["class_name"]
        if config.model.class_name.rpartition(":")[2] != class_name:
            raise UserError(f"--init-from {options.init_from}: the export is a {class_name}, the config's model a "
                            f"{config.model.class_name}")
        if os.path.realpath(config.export.base_path) != os.path.realpath(parent.base_path):
            config.export.base_path = parent.base_path
        if config.export.enabled and not options.dry_run:
            log(f"--init-from {parent.version_dir}: the fine-tuned model is published as the next version of "
                f"{parent.base_path}")
        if options.dry_run:
            config.export.enabled = False
        return cls(config, parent)

    @property
    def where(self):
        return f"--init-from {self.parent.given}"

    def model_config(self, run_model_config):
        """The config to build the model from: the export's, once `run_model_config` (the
        run's, with the data's spec) agrees with it; the run's without a parent."""
        if self.parent is None:
            return run_model_config
        from tfgen.models.base import get_model_class

        exported = dict(self.parent.metadata["config"])
        spec = run_model_config["data_spec"]
        spec = spec if isinstance(spec, dict) else spec.to_dict()
        differences = _differences({k: spec.get(k) for k in SPEC_FIELDS},
                                   {k: self.parent.metadata["data_spec"].get(k) for k in SPEC_FIELDS}, "")
        if differences:
            raise UserError(f"{self.where}: the data ({self.config.data.name}) differs from the export's data spec: "
                            + "; ".join(differences))
        model_class = get_model_class(self.config.model.class_name)
        ours = dict(run_model_config, data_spec=exported["data_spec"])
        configs = [model_class.from_config(c).get_config() for c in (ours, exported)]
        for c in configs:
            c.pop("name", None)
        differences = _differences(*configs, "model.config.")
        if differences:
            raise UserError(f"{self.where}: the config's model differs from the export's: " + "; ".join(differences))
        return exported

    def prepare(self, model, evaluate):
        """Freezes the configured parts; with a parent, restores its weights and measures
        its held-out figures (`evaluate()` -> (split, figures)) before any step."""
        model.freeze(self.options.freeze)
        if self.options.freeze:
            log(f"frozen: {', '.join(self.options.freeze)}")
        if self.parent is None:
            return
        restore_weights(model, self.parent.version_dir)
        self.split, self.parent_figures = evaluate()
        log(f"restored {self.parent.version_dir}")

    def decide(self, model, metrics):
        """Whether the trained model may be published: always without a parent; with one,
        when its held-out figure is within `max_regression` of the parent's (or forced).
        Prints both versions' figures side by side and records the decision in `metrics`."""
        if self.parent is None:
            return True
        from tfgen.publish.lineage import compare, side_by_side

        new = metrics["held_out"]
        print(side_by_side(metrics["held_out_split"], f"parent v{self.parent.version}", self.parent_figures, new),
              flush=True)
        self.comparison = compare(self.parent_figures, new, model.reported_losses, self.options.max_regression)
        publish = self.comparison.acceptable or self.options.force
        if self.options.dry_run:
            verdict = "dry run: nothing published (would " + ("" if publish else "not ") + "publish)"
        elif not self.config.export.enabled:
            verdict = "export disabled: nothing published"
        elif publish:
            verdict = "publishing" + (" (forced)" if not self.comparison.acceptable else "")
        else:
            verdict = "not published (pass --force to publish anyway)"
        log(f"fine-tuned vs parent v{self.parent.version}: {self.comparison.line()}; {verdict}")
        metrics["fine_tune"] = {
            "parent": self.parent.version_dir, "parent_held_out": self.parent_figures,
            "figure": self.comparison.figure, "acceptable": self.comparison.acceptable,
            "publish": bool(publish and self.config.export.enabled), "dry_run": self.options.dry_run,
        }
        return publish

    def lineage(self, dataset, metrics):
        """The `lineage` metadata of the published version (None without a parent)."""
        if self.parent is None:
            return None
        from tfgen.publish.lineage import data_fingerprint

        parent_lineage = self.parent.metadata.get("lineage") or {}
        return {
            "parent": {"base_path": self.parent.base_path, "version": self.parent.version,
                       "created": self.parent.metadata.get("created"),
                       "data_fingerprint": parent_lineage.get("data_fingerprint")},
            "data_fingerprint": data_fingerprint(dataset),
            "held_out": {"split": self.split, "figure": self.comparison.figure,
                         "parent": self.parent_figures, "new": metrics["held_out"]},
            "frozen": list(self.options.freeze),
            "forced": bool(self.options.force and not self.comparison.acceptable),
        }


# === Command line (`tfgen train`) ===
def add_arguments(parser):
    """The fine-tuning options of `tfgen train`."""
    group = parser.add_argument_group(
        "fine-tuning an export", "Start from an exported version instead of scratch and publish the result as the "
        "next version of its base path (with its lineage in tfgen.json), if it is no worse than its parent on the "
        "held-out split of the new data. Publishing into a base path that holds versions needs --add-version.")
    group.add_argument("--init-from", metavar="saved_models/NAME[/VERSION]",
                       help="the export to start from (newest version if none); its class and config must agree "
                            "with the config's model, its data spec with the data")
    group.add_argument("--learning-rate", type=float, metavar="LR",
                       help="peak learning rate of every optimizer (overrides training.learning_rate and the "
                            "per-optimizer ones); fine-tuning usually wants a lower one than training")
    group.add_argument("--freeze", action="append", metavar="PART", default=None,
                       help="do not update this part of the model (repeatable): one of the model's freezable "
                            "parts, e.g. a VAE's encoder, decoder or prior")
    group.add_argument("--early-stopping-patience", type=int, metavar="N",
                       help="stop after N epochs without improvement on the validation split and keep the best "
                            "weights (overrides training.early_stopping_patience)")
    group.add_argument("--max-regression", type=float, metavar="M",
                       help="publish only if the held-out figure (bits/dim, else the first loss) is worse than the "
                            "parent's by at most M (default 0: no worse)")
    group.add_argument("--force", action="store_true", help="publish even if worse than the parent by more")
    group.add_argument("--dry-run", action="store_true",
                       help="train and compare with the parent side by side, publish nothing")


def apply_arguments(config, args):
    """`config` with the fine-tuning options of `args` applied (in place; returns it)."""
    f, t = config.fine_tune, config.training
    if args.init_from is not None:
        f.init_from = args.init_from
    if args.freeze:
        f.freeze = list(args.freeze)
    for flag, key in (("force", "force"), ("dry_run", "dry_run")):
        if getattr(args, flag):
            setattr(f, key, True)
    if args.max_regression is not None:
        if not args.max_regression >= 0 or args.max_regression == float("inf"):
            raise UserError(f"--max-regression must be a finite number >= 0, got {args.max_regression}")
        f.max_regression = args.max_regression
    if args.learning_rate is not None:
        if not 0 < args.learning_rate < float("inf"):
            raise UserError(f"--learning-rate must be > 0, got {args.learning_rate}")
        t.learning_rate = args.learning_rate
        for overrides in t.optimizers.values():
            overrides.learning_rate = None
    if args.early_stopping_patience is not None:
        if args.early_stopping_patience < 1:
            raise UserError(f"--early-stopping-patience must be >= 1, got {args.early_stopping_patience}")
        t.early_stopping_patience = args.early_stopping_patience
    if (f.force or f.dry_run or f.max_regression) and f.init_from is None:
        raise UserError("--force, --dry-run and --max-regression compare with a parent: they need --init-from")
    return config
