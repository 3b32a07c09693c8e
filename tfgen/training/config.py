"""The YAML training config: one file says everything a training run does.

A config has these sections (every key but `model.class_name` and `data.name` has a
default; see the dataclasses below for each key's meaning):

```yaml
model:                      # a registered class (or module:Class) and its constructor kwargs
  class_name: RealNVP
  config: {steps_per_level: 6, hidden_units: 64}   # data_spec: from the dataset unless given
data:                       # passed as a dict to tfgen.data.datasets.load_dataset
  name: digits
training:
  batch_size: 64            # GLOBAL batch, split across replicas and workers
  epochs: 20
  optimizer: adam
  learning_rate: 1.0e-3
  schedule: {name: cosine, warmup_steps: 100}
  clipnorm: 1.0
  seed: 0
  # optimizers: {discriminator: {learning_rate: 4.0e-4}}   # models with several
  #   optimizers (a GAN's generator and discriminator): per-optimizer overrides
strategy: {name: default}   # default | mirrored | multi_worker | tpu
checkpoint: {keep: 3, every: 1}
tensorboard: {enabled: true, sample_every: 5}
export: {enabled: true, base_path: saved_models/digits_realnvp}
faults: {nonfinite: stop, preemption_grace_seconds: 0, peer_timeout_seconds: 30}   # nonfinite: stop | skip | unguarded
# fine_tune: {init_from: saved_models/digits_realnvp/1, freeze: [], max_regression: 0.0}
run_dir: runs/digits_realnvp
```

Files are read with `yaml.safe_load` only. Unknown keys are errors naming the full key
path ("unknown key 'training.lerning_rate'"), and wrong types name the key and the type
expected, so a typo never silently falls back to a default.
"""

from tfgen.errors import MissingPath, UserError

import dataclasses
import math
import os
import typing
from typing import Dict, Optional

import yaml

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adamax", "nadam")
SCHEDULES = ("constant", "cosine", "exponential")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
COMMUNICATIONS = ("auto", "ring", "nccl")
NONFINITE_POLICIES = ("stop", "skip", "unguarded")
INJECT_VALUES = ("overflow", "nan", "inf")


def _choices(*values):
    return dataclasses.field(default=values[0], metadata={"choices": values})


@dataclasses.dataclass
class ModelConfig:
    """Which model to build.

    Args:
      class_name: a class registered with `tfgen.models.base.register` (e.g. "RealNVP").
      config: constructor kwargs (its `get_config()` form). `data_spec` is taken from the
        dataset unless given here.
    """

    class_name: str = ""
    config: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class DataConfig:
    """The dataset, passed as a dict to `tfgen.data.datasets.load_dataset`.

    Args:
      name: dataset name; every other key is an option of that dataset, checked by
        `load_dataset` itself.
    """

    name: str = ""
    options: dict = dataclasses.field(default_factory=dict)

    def to_load_dict(self):
        """The dict `load_dataset` takes: `{"name": ..., **options}`."""
        return {"name": self.name, **self.options}


@dataclasses.dataclass
class ScheduleConfig:
    """Learning-rate schedule, in optimizer steps.

    Args:
      name: "constant", "cosine" (to `alpha * learning_rate` at `decay_steps`) or
        "exponential" (`learning_rate * decay_rate ** (step / decay_steps)`).
      warmup_steps: linear warm-up from 0 to `learning_rate` over this many steps first.
      decay_steps: steps of the decay after warm-up; default: the rest of training.
      alpha: cosine floor as a fraction of `learning_rate`.
      decay_rate: exponential decay factor per `decay_steps`.
    """

    name: str = _choices(*SCHEDULES)
    warmup_steps: int = 0
    decay_steps: Optional[int] = None
    alpha: float = 0.0
    decay_rate: float = 0.5


#: The keys an optimizer takes, at `training` level or per optimizer in `training.optimizers`.
OPTIMIZER_KEYS = ("optimizer", "learning_rate", "schedule", "clipnorm", "global_clipnorm", "weight_decay",
                  "beta_1", "beta_2", "epsilon", "momentum")


@dataclasses.dataclass
class OptimizerConfig:
    """Overrides for one of a model's optimizers (`training.optimizers.<name>`).

    Every key means what the `training` key of the same name means; a key left out
    (None) takes the `training` value (a `schedule` given here replaces the training
    one as a whole).
    """

    optimizer: Optional[str] = None
    learning_rate: Optional[float] = None
    schedule: Optional[ScheduleConfig] = None
    clipnorm: Optional[float] = None
    global_clipnorm: Optional[float] = None
    weight_decay: Optional[float] = None
    beta_1: Optional[float] = None
    beta_2: Optional[float] = None
    epsilon: Optional[float] = None
    momentum: Optional[float] = None


@dataclasses.dataclass
class TrainingConfig:
    """How `fit` runs.

    Args:
      batch_size: global batch size (all replicas of all workers together); must be a
        multiple of the number of replicas.
      epochs: total epochs (a resumed run continues up to this number).
      steps_per_epoch: optimizer steps per epoch; default: train examples // batch_size.
      optimizer: a Keras optimizer name.
      learning_rate: peak learning rate.
      schedule: see `ScheduleConfig`.
      clipnorm: clip each variable's gradient to this norm (None: no clipping).
      global_clipnorm: clip the global gradient norm (None: no clipping).
      weight_decay: decoupled weight decay (adamw; None: the optimizer's default).
      beta_1, beta_2, epsilon: Adam-family moments; momentum: SGD/RMSprop momentum.
      optimizers: per-optimizer overrides, `{name: OptimizerConfig}`, for models that
        train with several optimizers (their `optimizer_names`); each takes the keys
        above (optimizer .. momentum), unset ones inherit the training-level value.
      seed: seeds Keras/TF/NumPy, shuffling and the fixed sample seeds.
      jit_compile: XLA-compile the train/test steps (measure per model with
        `bench/flow_training.py`: faster for small dense and autoregressive flows on CPU,
        slower for convolutional couplings).
      steps_per_execution: training steps run by one call of the compiled train
        function (Keras `compile(steps_per_execution=...)`): the same steps, noise and
        data order, with `fit`'s per-call cost (callbacks, the function call) paid once
        per N steps. Worth it for small models whose step takes a few milliseconds (the
        8-Gaussians WGAN-GP: `bench/gan_training.py`). Per-batch callbacks then see every
        N-th step: a preemption checkpoint, a skipped step's log line and the progress
        bar fall on execution boundaries.
      early_stopping_patience: stop after this many epochs without val-loss improvement
        and restore the best weights (None: off).
      early_stopping_min_delta: the improvement that counts.
      validation_freq: validate every N epochs.
      eval_noise_draws: held-out figures that are stochastic (a flow's dequantization
        noise, a VAE's posterior samples) are averaged over this many draws.
      evaluate_initial: also evaluate the held-out split before training, so the run
        records how much it improved.
      verbose: Keras `fit` verbosity: 1 = progress bar, 2 = one line per epoch, 0 = quiet.
    """

    batch_size: int = 64
    epochs: int = 10
    steps_per_epoch: Optional[int] = None
    optimizer: str = _choices(*OPTIMIZERS)
    learning_rate: float = 1e-3
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    clipnorm: Optional[float] = None
    global_clipnorm: Optional[float] = None
    weight_decay: Optional[float] = None
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    momentum: float = 0.0
    optimizers: Dict[str, OptimizerConfig] = dataclasses.field(default_factory=dict)
    seed: int = 0
    jit_compile: bool = False
    steps_per_execution: int = 1
    early_stopping_patience: Optional[int] = None
    early_stopping_min_delta: float = 0.0
    validation_freq: int = 1
    eval_noise_draws: int = 3
    evaluate_initial: bool = False
    verbose: int = 2

    def optimizer_settings(self, name):
        """The resolved settings of optimizer `name`: its overrides over the training-level
        keys (an `OptimizerConfig` with every key set)."""
        overrides = self.optimizers.get(name) or OptimizerConfig()
        return OptimizerConfig(**{key: getattr(self, key) if getattr(overrides, key) is None
                                  else getattr(overrides, key) for key in OPTIMIZER_KEYS})


@dataclasses.dataclass
class StrategyConfig:
    """The `tf.distribute` strategy (see `tfgen.training.strategy`).

    Args:
      name: "default" (one device), "mirrored" (all local devices), "multi_worker"
        (MultiWorkerMirroredStrategy; cluster from the TF_CONFIG environment variable)
        or "tpu".
      devices: mirrored only: device names (default: all local GPUs, else the CPU).
      communication: multi_worker only: collective implementation.
      tpu: tpu only: TPU name or grpc:// address ("" = the local/Colab TPU).
      zone, project: tpu only: GCP zone and project of a named TPU.
    """

    name: str = _choices(*STRATEGIES)
    devices: Optional[list] = None
    communication: str = _choices(*COMMUNICATIONS)
    tpu: str = ""
    zone: Optional[str] = None
    project: Optional[str] = None


@dataclasses.dataclass
class CheckpointConfig:
    """Checkpoints of model, optimizer and epoch (`tf.train.CheckpointManager`).

    Args:
      directory: default `RUN_DIR/checkpoints`.
      keep: how many recent checkpoints to keep (>= 2, so a damaged newest one has a
        predecessor to fall back to).
      every: save every N epochs (and always after the last one).
    """

    directory: Optional[str] = None
    keep: int = 3
    every: int = 1


@dataclasses.dataclass
class TensorBoardConfig:
    """TensorBoard logs in `RUN_DIR/logs`.

    Args:
      enabled: write scalars (loss, bits/dim, learning rate) every epoch.
      sample_every: write a grid (images) or scatter (2-D vectors) of samples every N
        epochs, from fixed seeds so the grids are comparable (0: never).
      num_samples: samples per grid.
      metrics_every: write sample-quality figures (FD, KID, precision/recall; mode
        coverage, class accuracy where they apply) against the validation split every N
        epochs (0, the default: never; tfgen/training/sample_metrics.py).
      metrics_feature_network: their feature network (default: as `tfgen evaluate`
        chooses by the data).
      metrics_num_samples: samples each time (default: the validation split's size).
    """

    enabled: bool = True
    sample_every: int = 5
    num_samples: int = 36
    metrics_every: int = 0
    metrics_feature_network: Optional[str] = None
    metrics_num_samples: Optional[int] = None


@dataclasses.dataclass
class ExportConfig:
    """Export of the trained model as a versioned SavedModel (chief only).

    Args:
      enabled: export after training.
      base_path: `saved_models/NAME`; default `saved_models/<config file stem>`.
      version: a positive integer; default: one more than the newest existing version.
      add_version: allow exporting into a base path that already holds versions (a
        server watching it switches to the new one). False, the default, refuses before
        training starts, so a run never changes a shipped or served model unasked.
    """

    enabled: bool = True
    base_path: Optional[str] = None
    version: Optional[int] = None
    add_version: bool = False


@dataclasses.dataclass
class FaultsConfig:
    """What training does when something goes wrong (`tfgen.training.faults`).

    Args:
      nonfinite: what a step whose batch, loss or gradients are not finite does.
        "stop" stops training after that step, naming its epoch and batch; nothing from
        it on is saved, so the newest checkpoint is the last good one. "skip" applies no
        update for it, counts and logs it and goes on (every update then waits for the
        check of all its gradients: up to 10% of a 10 ms step, docs/benchmarks.md "GAN
        training"). "unguarded" checks nothing, as Keras' `fit` with `TerminateOnNaN`:
        a non-finite loss stops training after its step, and a batch holding NaN or Inf
        fails the model's input check, or, in a model without one, gives a non-finite
        loss; a finite loss over non-finite gradients goes unseen until the epoch's
        weight check. (Not "off": YAML reads that as false.)
      max_skipped_steps: "skip" only: stop anyway once more steps than this were skipped
        in one run (a model that diverged skips every step).
      preemption_grace_seconds: after SIGTERM, 0 saves a step checkpoint after the
        current step and stops; G > 0 keeps training and saves it shortly before G
        seconds have passed. Keep it below the scheduler's own grace (Kubernetes'
        terminationGracePeriodSeconds, 30 by default).
      peer_timeout_seconds: multi_worker: a worker silent (no heartbeat) this long is
        declared lost and the others stop with an error instead of waiting.
      inject_nonfinite_at_step: fault drills and tests: the training batch at this
        global step (from 0) is replaced by `inject_value`. None: off.
      inject_value: what that batch holds: "overflow" (1e30, finite values whose loss
        overflows), "nan" or "inf" (a batch that is itself non-finite).
      inject_sigterm_at_step: fault drills and tests: the process sends itself SIGTERM
        as this global step (from 0) begins, a preemption at a known step. None: off.
    """

    nonfinite: str = _choices(*NONFINITE_POLICIES)
    max_skipped_steps: int = 10
    preemption_grace_seconds: float = 0.0
    peer_timeout_seconds: float = 30.0
    inject_nonfinite_at_step: Optional[int] = None
    inject_value: str = _choices(*INJECT_VALUES)
    inject_sigterm_at_step: Optional[int] = None


@dataclasses.dataclass
class FineTuneConfig:
    """Fine-tuning an exported version and publishing the result (`tfgen.training.init_from`).

    Args:
      init_from: `saved_models/NAME[/VERSION]` (newest version if none): the run starts
        from that export's weights, its model rebuilt from the export's metadata (the
        config's model must agree), and publishes the next version of the same base path
        (`export.base_path` is not used); publishing into a base path with versions
        needs `export.add_version` (`--add-version`), as any export does.
      freeze: names of the model's `freezable_parts` (e.g. a VAE's decoder) that are
        not updated.
      max_regression: the fine-tuned version is not published when its held-out figure
        (bits/dim, else the first reported loss; lower is better) is worse than the
        parent's on the same split by more than this.
      force: publish even when it is worse by more than `max_regression`.
      dry_run: train and compare with the parent, publish nothing.
    """

    init_from: Optional[str] = None
    freeze: list = dataclasses.field(default_factory=list)
    max_regression: float = 0.0
    force: bool = False
    dry_run: bool = False


@dataclasses.dataclass
class TrainConfig:
    """A whole training run. Build with `load_config(path)` or `parse_config(dict)`."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    strategy: StrategyConfig = dataclasses.field(default_factory=StrategyConfig)
    checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
    tensorboard: TensorBoardConfig = dataclasses.field(default_factory=TensorBoardConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    faults: FaultsConfig = dataclasses.field(default_factory=FaultsConfig)
    fine_tune: FineTuneConfig = dataclasses.field(default_factory=FineTuneConfig)
    run_dir: Optional[str] = None

    @property
    def checkpoint_dir(self):
        return self.checkpoint.directory or os.path.join(self.run_dir, "checkpoints")

    def to_dict(self):
        """The resolved config as plain data (what `RUN_DIR/config.yaml` holds)."""
        d = dataclasses.asdict(self)
        d["data"] = self.data.to_load_dict()
        return d

    def to_yaml(self):
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# === Parsing ===
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
               dict: "a mapping", list: "a list"}


def _check_value(value, annotation, path):
    """`value` converted to `annotation`, or a ValueError naming `path`."""
    if typing.get_origin(annotation) is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key '{path}' must be a mapping, got {type(value).__name__}")
        _, value_type = typing.get_args(annotation)
        return {str(k): _check_value(v, value_type, f"{path}.{k}") for k, v in value.items()}
    if typing.get_origin(annotation) is typing.Union:
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return None if value is None else _check_value(value, inner, path)
    if dataclasses.is_dataclass(annotation):
        return parse_section(annotation, value, path)
    # YAML booleans are ints to Python; never take one for a number or vice versa.
    ok = isinstance(value, annotation) and not (annotation in (int, float) and isinstance(value, bool))
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        # PyYAML (YAML 1.1) reads `1e-3` (no dot) as a string; take it as the number meant.
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return number
    if not ok:
        hint = ""
        if annotation is str and isinstance(value, bool):
            hint = (" (YAML reads an unquoted yes, no, on, off, true or false as true/false: "
                    "quote the word, e.g. 'off')")
        raise UserError(
            f"config key '{path}' must be {_TYPE_NAMES[annotation]}, got {type(value).__name__} {value!r}{hint}"
        )
    return value


def parse_section(cls, data, path):
    """The config dataclass `cls` from the mapping `data` found at key `path` ("" at the
    top): unknown keys, wrong types and bad values are one-line UserErrors naming the key."""
    if not isinstance(data, dict):
        raise UserError(f"config key '{path}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if cls is DataConfig:
        # Every data key but `name` is an option of the dataset, checked by load_dataset.
        data = {"name": data.get("name", ""), "options": {k: v for k, v in data.items() if k != "name"}}
    kwargs = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise UserError(f"unknown key '{key_path}'; known keys: {', '.join(fields)}")
        value = _check_value(value, hints[key], key_path)
        choices = fields[key].metadata.get("choices")
        if choices and value not in choices:
            raise UserError(f"config key '{key_path}' must be one of {list(choices)}, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def _require(condition, message):
    if not condition:
        raise UserError(message)


def _validate(config):
    """Cross-field checks: the model class's (its registry lookup imports TensorFlow)
    after the rest's."""
    from tfgen.models.base import get_model_class

    _validate_values(config)
    model_class = get_model_class(config.model.class_name)  # UserError listing the known classes
    _validate_model_kwargs(model_class, config.model)
    t = config.training
    unknown = sorted(set(t.optimizers) - set(model_class.optimizer_names))
    _require(not unknown, f"config key 'training.optimizers.{unknown[0] if unknown else ''}': "
             f"{config.model.class_name} trains with optimizers {list(model_class.optimizer_names)}")
    for name in model_class.optimizer_names:
        _validate_optimizer(t.optimizer_settings(name), "training" if name not in t.optimizers
                            else f"training.optimizers.{name}")


def _validate_values(config):
    """The checks that need no model class, hence no TensorFlow."""
    _require(config.model.class_name, "config key 'model.class_name' is required")
    _require(config.data.name, "config key 'data.name' is required")
    t = config.training
    for key in ("batch_size", "epochs", "validation_freq", "eval_noise_draws", "steps_per_execution"):
        _require(getattr(t, key) >= 1, f"config key 'training.{key}' must be >= 1")
    _require(t.steps_per_epoch is None or t.steps_per_epoch >= 1, "config key 'training.steps_per_epoch' must be >= 1")
    _require(t.verbose in (0, 1, 2), "config key 'training.verbose' must be 0, 1 or 2")
    _require(config.checkpoint.keep >= 2, "config key 'checkpoint.keep' must be >= 2 (a damaged newest checkpoint needs a predecessor)")
    _require(config.checkpoint.every >= 1, "config key 'checkpoint.every' must be >= 1")
    _require(config.tensorboard.sample_every >= 0, "config key 'tensorboard.sample_every' must be >= 0")
    _require(config.tensorboard.metrics_every >= 0, "config key 'tensorboard.metrics_every' must be >= 0")
    _require(config.tensorboard.metrics_num_samples is None or config.tensorboard.metrics_num_samples >= 2,
             "config key 'tensorboard.metrics_num_samples' must be >= 2")
    _require(config.export.version is None or config.export.version >= 1, "config key 'export.version' must be >= 1")
    f = config.faults
    _require(f.max_skipped_steps >= 0, "config key 'faults.max_skipped_steps' must be >= 0")
    _require(f.preemption_grace_seconds >= 0, "config key 'faults.preemption_grace_seconds' must be >= 0")
    _require(f.peer_timeout_seconds >= 1, "config key 'faults.peer_timeout_seconds' must be >= 1")
    _require(f.inject_nonfinite_at_step is None or f.inject_nonfinite_at_step >= 0,
             "config key 'faults.inject_nonfinite_at_step' must be >= 0")
    _require(f.inject_sigterm_at_step is None or f.inject_sigterm_at_step >= 0,
             "config key 'faults.inject_sigterm_at_step' must be >= 0")
    f = config.fine_tune
    _require(all(isinstance(name, str) for name in f.freeze), "config key 'fine_tune.freeze' must be a list of part names")
    _require(math.isfinite(f.max_regression) and f.max_regression >= 0,
             "config key 'fine_tune.max_regression' must be a finite number >= 0")


# What keras.Model's constructor takes besides a model's own arguments.
KERAS_MODEL_KWARGS = ("name", "trainable", "dtype")


def _validate_model_kwargs(model_class, model):
    """`model.config` keys against the class's constructor, so a typo is one line naming
    it rather than Keras' traceback ("Keyword argument not understood")."""
    import inspect

    # A constructor's **kwargs go to its base class's: follow them up to Keras' Model.
    named = set()
    for cls in model_class.__mro__:
        if "__init__" not in vars(cls):
            continue
        if cls.__module__.split(".")[0] in ("tf_keras", "keras", "tensorflow"):
            break
        parameters = inspect.signature(cls.__init__).parameters.values()
        named |= {p.name for p in parameters if p.name != "self"
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    if not named:  # a constructor of **kwargs only: nothing to check against
        return
    unknown = sorted(set(model.config) - named - set(KERAS_MODEL_KWARGS))
    _require(not unknown, f"unknown key 'model.config.{unknown[0] if unknown else ''}' for "
             f"{model.class_name}; its constructor takes: {', '.join(sorted(named))}")


def _validate_optimizer(o, path):
    """Checks one optimizer's resolved settings; `path` is the config section they came from."""
    _require(o.optimizer in OPTIMIZERS, f"config key '{path}.optimizer' must be one of {list(OPTIMIZERS)}, "
             f"got {o.optimizer!r}")
    _require(o.learning_rate > 0, f"config key '{path}.learning_rate' must be > 0")
    _require(o.schedule.name in SCHEDULES, f"config key '{path}.schedule.name' must be one of {list(SCHEDULES)}")
    _require(o.schedule.warmup_steps >= 0, f"config key '{path}.schedule.warmup_steps' must be >= 0")
    _require(o.clipnorm is None or o.global_clipnorm is None,
             f"config keys '{path}.clipnorm' and '{path}.global_clipnorm' exclude each other")
    _require(o.weight_decay is None or o.optimizer == "adamw", f"config key '{path}.weight_decay' needs optimizer adamw")


def parse_config(data, name="run"):
    """A validated `TrainConfig` from plain data (e.g. `yaml.safe_load` output).

    Args:
      data: the mapping.
      name: default run name, for `run_dir` (`runs/NAME`) and `export.base_path`
        (`saved_models/NAME`) when the config does not set them.
    """
    _require_mapping(data)
    config = parse_section(TrainConfig, data, "")
    if config.run_dir is None:
        config.run_dir = os.path.join("runs", name)
    if config.export.base_path is None:
        config.export.base_path = os.path.join("saved_models", name)
    _validate(config)
    return config


def read_yaml(path, what="training config"):
    """The data of a YAML file (`yaml.safe_load` only); one-line errors naming `path`."""
    if not os.path.isfile(path):
        raise MissingPath(f"{what} not found: {path}")
    with open(path) as f:
        try:
            return yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise UserError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None


def _require_mapping(data):
    if not isinstance(data, dict):
        got = "nothing (an empty file)" if data is None else type(data).__name__
        raise UserError(f"a training config must be a mapping of sections, got {got}")


def check_config_file(path):
    """The checks of `load_config` that need no model class, hence no TensorFlow: the
    file, its YAML, every key, type and choice, and the values' ranges."""
    data = read_yaml(path)
    try:
        _require_mapping(data)
        _validate_values(parse_section(TrainConfig, data, ""))
    except UserError as e:
        raise UserError(f"{path}: {e}") from None


def run_directory_files(run_dir):
    """`(model.json, config.yaml)` of a run directory written by `tfgen train`."""
    files = tuple(os.path.join(run_dir, name) for name in ("model.json", "config.yaml"))
    for path in files:
        if not os.path.isfile(path):
            raise MissingPath(f"{path} not found: is {run_dir} a run directory written by `tfgen train`?")
    return files


def load_config(path):
    """Reads and validates a YAML training config (`yaml.safe_load` only)."""
    data = read_yaml(path)
    try:
        return parse_config(data, name=os.path.splitext(os.path.basename(path))[0])
    except UserError as e:
        raise UserError(f"{path}: {e}") from None


def override(config, run_dir=None, epochs=None, export=None, add_version=None):
    """A copy of `config` with command-line overrides applied (None: keep)."""
    config = parse_config(config.to_dict())
    if add_version is not None:
        config.export.add_version = add_version
    if run_dir is not None:
        config.run_dir = run_dir
    if epochs is not None:
        _require(epochs >= 1, "--epochs must be >= 1")
        config.training.epochs = epochs
    if export is not None:
        config.export.enabled = export
    return config
