"""config -> data -> strategy -> model -> fit -> checkpoints -> held-out metrics -> export.

`train(config)` is the whole of `tfgen train CONFIG`. It writes

    RUN_DIR/config.yaml     the resolved config (every default filled in)
    RUN_DIR/model.json      {"class_name", "config"}: rebuilds the model (`tfgen export`)
    RUN_DIR/checkpoints/    model + every optimizer + epoch, newest good one restorable
    RUN_DIR/logs/           TensorBoard scalars and sample grids
    RUN_DIR/history.csv     one row per epoch (appended across resumes)
    RUN_DIR/metrics.json    status, history, the model's held-out figures

and, when export is enabled, a new version under `export.base_path`. Everything that
can fail on bad input (config, dataset, model construction) fails before the run
directory is created. Under a multi-worker strategy only the chief writes these files;
all workers read checkpoints from the same (shared) directory when resuming.
"""

import dataclasses
import json
import os
import time
from typing import Optional

from tfgen.backend import keras, tf
from tfgen.files import write_json, write_text
from tfgen.models.base import NONFINITE_INPUT_MESSAGE, check_log_prob_samples, get_model_class, model_from_config
from tfgen.training import callbacks as callbacks_lib
from tfgen.training import faults
from tfgen.training import sample_metrics
from tfgen.training import strategy as strategy_lib
from tfgen.training.config import load_config, run_directory_files
from tfgen.training.optimizers import build_optimizer, build_schedule
from tfgen.errors import MissingPath, PathExists, UserError
from tfgen.training.init_from import FineTune


class TrainingDiverged(RuntimeError):
    """Training hit a non-finite loss or weight; no non-finite checkpoint was written."""


@dataclasses.dataclass
class TrainResult:
    """What `train` did.

    Attributes:
      run_dir: the run directory.
      status: "completed" or "early_stopped" ("diverged" raises `TrainingDiverged`).
      initial_epoch: the epoch training started from (> 0 when resumed).
      epochs_completed: epochs done in total, counting resumed ones.
      metrics: what `metrics.json` holds.
      export_dir: the exported version directory, or None.
    """

    run_dir: str
    status: str
    initial_epoch: int
    epochs_completed: int
    metrics: dict
    export_dir: Optional[str] = None


def log(message):
    print(f"tfgen train: {message}", flush=True)


def read_json(path):
    with open(path) as f:
        return json.load(f)


# === Model ===
def example_inputs(spec, batch=1):
    """A valid input batch of zeros (`x` or `(x, condition)`) to build a model with."""
    x = tf.zeros([batch, *spec.event_shape], tf.float32)
    if spec.conditional:
        return x, tf.zeros([batch], tf.int32)
    return x


def build_model(class_name, config):
    """Builds a registered model and creates its weights (call it inside `strategy.scope()`)."""
    model = model_from_config(class_name, config)
    model(example_inputs(model.data_spec), training=False)
    return model


def clone_unreplicated(model, class_name, weights):
    """A copy of a distributed model outside any strategy, for export.

    `weights` is `model.get_weights()`, read by EVERY worker: reading sync-on-read
    variables (e.g. metric totals) all-reduces across workers.
    """
    with tf.distribute.get_strategy().scope():
        clone = build_model(class_name, model.get_config())
    clone.set_weights(weights)
    return clone


# === Data ===
def _datasets(dataset, config, num_workers):
    """(train, validation, steps_per_epoch): tf.data pipelines of GLOBAL batches;
    `train(start_step)` is the training stream from global step `start_step` on.

    Keras splits each global batch across replicas (and, with the DATA auto-shard
    policy, across workers). Multi-worker runs drop partial batches so every worker
    takes the same number of steps and collectives never wait for a missing batch.
    The training stream's order is a function of `training.seed` alone
    (`training_batches`), so a resumed run reads the batches the uninterrupted one would.
    """
    from tfgen.data.datasets import to_tf_dataset, training_batches

    t = config.training
    spec, splits = dataset.spec, dataset.splits
    n_train = len(splits["train"].x)
    if n_train < t.batch_size:
        raise UserError(f"training.batch_size {t.batch_size} exceeds the {n_train} training examples")
    steps = t.steps_per_epoch or n_train // t.batch_size
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

    def train(start_step):
        ds = training_batches(splits["train"], spec, t.batch_size, seed=t.seed, start_step=start_step)
        if config.faults.inject_nonfinite_at_step is not None:
            ds = faults.inject_nonfinite_batch(ds, config.faults.inject_nonfinite_at_step - start_step,
                                               config.faults.inject_value)
        return ds.with_options(options)

    train(0)  # checks the split against the spec before anything is written
    validation = splits.get("validation")
    if validation is None or (num_workers > 1 and len(validation.x) < t.batch_size):
        return train, None, steps
    val_ds = to_tf_dataset(validation, spec, batch_size=t.batch_size, shuffle=False,
                           drop_remainder=num_workers > 1)
    return train, val_ds.with_options(options), steps


def evaluate_held_out(model, dataset, training):
    """(split name, figures) of the test split (else validation; else None, {}).

    The figures are the model's own (`model.evaluate_held_out`), e.g. bits/dim with its
    standard error for likelihood models; stochastic ones are averaged over
    `training.eval_noise_draws` draws.
    """
    for name in ("test", "validation"):
        if name in dataset.splits:
            return name, model.evaluate_held_out(dataset.splits[name], batch_size=training.batch_size,
                                                 draws=training.eval_noise_draws, seed=training.seed)
    return None, {}


# === Run directory ===
def _check_run_dir(config, resume):
    ckpt_dir = config.checkpoint_dir
    has_checkpoints = bool(tf.io.gfile.glob(os.path.join(ckpt_dir, "ckpt-*.index")))
    if has_checkpoints and not resume:
        raise PathExists(
            f"{ckpt_dir} already holds checkpoints: pass --resume to continue that run, "
            "or --run-dir for a new one"
        )
    model_json = os.path.join(config.run_dir, "model.json")
    if resume and os.path.exists(model_json):
        saved = read_json(model_json)["class_name"]
        if saved != config.model.class_name:
            raise UserError(f"--resume: {config.run_dir} trained a {saved}, the config asks for a {config.model.class_name}")


def _check_export_target(config):
    """Refuses, before training, an export that would add a version to a base path that
    already has some (e.g. a shipped model `make serve` serves) unless asked."""
    from tfgen.versions import version_dirs

    e = config.export
    if not e.enabled or e.add_version:
        return
    existing = version_dirs(e.base_path)
    if existing:
        raise PathExists(
            f"export.base_path {e.base_path} already holds version(s) {sorted(existing)}; this run would add "
            f"another, which a server watching it switches to. Use --no-export, point export.base_path elsewhere, "
            f"or pass --add-version (export.add_version: true) to add it")


def _check_workers_agree(strategy, epoch):
    """Raises if the workers of a multi-worker run restored different epochs.

    Every worker restores from the checkpoint directory it sees; without a shared
    filesystem they would disagree and then wait on each other forever.
    """
    per_replica = strategy.run(lambda: tf.constant([float(epoch), float(epoch) ** 2]))
    mean, mean_square = strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None).numpy()
    if abs(mean_square - mean**2) > 1e-6:
        raise UserError(
            f"workers resumed from different epochs (this one: {epoch}, mean: {mean:g}): the run's checkpoint "
            "directory must be on a filesystem every worker sees"
        )


def _trim_history(path, initial_epoch):
    """Drops rows of epochs >= `initial_epoch` from `history.csv` (they are redone when
    a resume falls back past them), so appended rows continue it without repeats."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        lines = f.read().splitlines()
    kept = lines[:1] + [line for line in lines[1:] if line and int(line.split(",")[0]) < initial_epoch]
    write_text(path, "\n".join(kept) + "\n")


def _model_config(config, spec):
    model_config = dict(config.model.config)
    model_config.setdefault("data_spec", spec.to_dict())
    return model_config


def _training_metadata(config, dataset, epochs_completed):
    metadata = {
        "data": config.data.to_load_dict(),
        "num_train_examples": len(dataset.splits["train"].x),
        "epochs": epochs_completed,
        "global_batch_size": config.training.batch_size,
    }
    if dataset.spec.num_classes:  # p(y) of the Bayes classifier (export/signatures.py)
        from tfgen.export.signatures import class_frequencies

        metadata["class_prior"] = class_frequencies(dataset.splits["train"].y, dataset.spec.num_classes)
    return metadata


def _callbacks(config, model, store, spec, initial_epoch):
    skip = config.faults.nonfinite == "skip"
    guard = callbacks_lib.NaNGuard(step_guard=getattr(model, "step_guard", None),
                                   max_skipped=config.faults.max_skipped_steps if skip else None, log=log)
    cbs = [guard]
    checkpoint_cb = callbacks_lib.CheckpointCallback(
        store, every=config.checkpoint.every, total_epochs=config.training.epochs, nan_guard=guard, log=log
    )
    cbs.append(checkpoint_cb)
    log_dir = os.path.join(config.run_dir, "logs")
    chief = strategy_lib.is_chief(model.distribute_strategy)
    if config.tensorboard.enabled:
        cbs.append(callbacks_lib.EpochSummaries(log_dir))
        tb = config.tensorboard
        if tb.sample_every and callbacks_lib.SampleSummaries.supports(spec):
            cbs.append(callbacks_lib.SampleSummaries(
                log_dir, spec, every=tb.sample_every, num_samples=tb.num_samples, seed=config.training.seed
            ))
    if chief:
        history_path = os.path.join(config.run_dir, "history.csv")
        _trim_history(history_path, initial_epoch)
        cbs.append(keras.callbacks.CSVLogger(history_path, append=initial_epoch > 0))
    if config.training.early_stopping_patience is not None:
        cbs.append(keras.callbacks.EarlyStopping(
            monitor=f"val_{model.reported_losses[0]}", patience=config.training.early_stopping_patience,
            min_delta=config.training.early_stopping_min_delta, restore_best_weights=True,
        ))
    return cbs, guard, checkpoint_cb


def _export(config, model, strategy, dataset, metrics, lineage=None):
    """Exports the trained model (chief only); returns the version directory or None."""
    from tfgen.export.saved_model import export_model

    distributed = strategy is not tf.distribute.get_strategy()
    weights = model.get_weights() if distributed else None  # on every worker (see clone_unreplicated)
    if not strategy_lib.is_chief(strategy):
        return None
    exportable = clone_unreplicated(model, config.model.class_name, weights) if distributed else model
    metadata = {
        "training_data": _training_metadata(config, dataset, metrics["epochs_completed"]),
        "metrics": {"split": metrics["held_out_split"], **metrics["held_out"]},
    }
    if lineage is not None:
        metadata["lineage"] = lineage
    export_dir = export_model(exportable, config.export.base_path, version=config.export.version, metadata=metadata)
    metrics["export_dir"] = export_dir
    log(f"exported {export_dir}")
    return export_dir


def _write_run_files(config, model):
    """RUN_DIR/config.yaml (resolved) and model.json (what `tfgen export` rebuilds)."""
    os.makedirs(config.run_dir, exist_ok=True)
    write_text(os.path.join(config.run_dir, "config.yaml"), config.to_yaml())
    write_json(os.path.join(config.run_dir, "model.json"),
               {"class_name": config.model.class_name, "config": model.get_config()})


def train(config, resume=False):
    """Runs one training job (see the module docstring for what it writes).

    Args:
      config: a `TrainConfig` or the path of a YAML config.
      resume: continue from the newest good checkpoint in the run's checkpoint
        directory (from scratch if there is none).

    Returns:
      A `TrainResult`.

    Raises:
      ValueError / FileNotFoundError / FileExistsError: bad config, data or run dir,
        before anything is written.
      TrainingDiverged: a non-finite loss or weight stopped training.
    """
    from tfgen.data.datasets import load_dataset

    if not dataclasses.is_dataclass(config):
        config = load_config(config)
    fine_tune = FineTune.from_config(config)  # reads an --init-from export first
    _check_run_dir(config, resume)
    _check_export_target(config)
    faults.check_no_stale_preemption(config.checkpoint_dir, resume)
    t = config.training
    # Before any other TF op: MultiWorkerMirroredStrategy configures collectives at startup.
    strategy = strategy_lib.resolve_strategy(config.strategy, config.faults.peer_timeout_seconds)
    chief = strategy_lib.is_chief(strategy)
    workers = strategy_lib.num_workers(strategy)
    if t.batch_size % strategy.num_replicas_in_sync:
        raise UserError(
            f"training.batch_size {t.batch_size} is not a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    keras.utils.set_random_seed(t.seed)
    dataset = load_dataset(config.data.to_load_dict())
    spec = dataset.spec
    if workers > 1:
        faults.check_workers_agree(config, dataset, strategy)
    train_stream, val_ds, steps = _datasets(dataset, config, workers)
    if t.early_stopping_patience is not None and val_ds is None:
        raise UserError(f"training.early_stopping_patience needs a 'validation' split; dataset {config.data.name!r} has none")
    model_config = fine_tune.model_config(_model_config(config, spec))
    sample_quality_cb = sample_metrics.from_config(config, dataset, log=log)  # checks its feature network

    total_steps = steps * t.epochs
    with strategy.scope():
        model = build_model(config.model.class_name, model_config)
        optimizers = {name: build_optimizer(t.optimizer_settings(name), total_steps) for name in model.optimizer_names}
        model.compile(optimizer=optimizers, jit_compile=t.jit_compile, steps_per_execution=t.steps_per_execution)
        # Slot variables exist before a restore, so checkpoints match them one to one.
        for name, optimizer in model.optimizers.items():
            optimizer.build(model.variables_for_optimizer(name))
    if config.faults.nonfinite != "unguarded":
        faults.install_step_guard(model, skip_bad_steps=config.faults.nonfinite == "skip")
    fine_tune.prepare(model, lambda: evaluate_held_out(model, dataset, t))

    # Input checked; from here on the run directory exists.
    if chief:
        _write_run_files(config, model)
    store = callbacks_lib.CheckpointStore(config.checkpoint_dir, model, keep=config.checkpoint.keep, strategy=strategy)
    initial_epoch = store.restore_latest_good(log=log) if resume else 0
    if resume and not initial_epoch:
        log(f"--resume: no good checkpoint in {config.checkpoint_dir}; starting from scratch")
    preemption = faults.PreemptionCheckpoint(
        model, faults.preemption_dir(config.checkpoint_dir), steps, config.faults.preemption_grace_seconds,
        chief=chief, sigterm_at_step=config.faults.inject_sigterm_at_step, log=log)
    if preemption.resumed_at is not None:
        if preemption.resumed_at[0] < initial_epoch:  # an epoch checkpoint superseded it
            preemption.resumed_at = None
            initial_epoch = store.restore_latest_good(log=log)
        else:
            initial_epoch = preemption.resumed_at[0]
            log(f"--resume: continuing from the preemption checkpoint at epoch {initial_epoch + 1}, "
                f"step {preemption.resumed_at[1]}")
    if resume and workers > 1:
        _check_workers_agree(strategy, initial_epoch)
    if not initial_epoch and preemption.resumed_at is None and fine_tune.parent is None:
        model.initialize_from_data(dataset.splits["train"])
    for name, optimizer in model.optimizers.items():
        learning_rate = build_schedule(t.optimizer_settings(name), total_steps)
        if initial_epoch and not callable(learning_rate):
            # A constant learning rate is an optimizer variable, restored with it: the
            # config of the resumed run wins (a schedule is code, not restored).
            optimizer.learning_rate = learning_rate

    start_step = initial_epoch * steps if preemption.resumed_at is None else (
        preemption.resumed_at[0] * steps + preemption.resumed_at[1])
    train_ds = train_stream(start_step)
    metrics = {"num_replicas": strategy.num_replicas_in_sync, "num_workers": workers,
               "global_batch_size": t.batch_size, "steps_per_epoch": steps, "initial_epoch": initial_epoch}
    if t.evaluate_initial and not initial_epoch and preemption.resumed_at is None:
        metrics["initial_held_out"] = evaluate_held_out(model, dataset, t)[1]
        log(f"held-out before training: {metrics['initial_held_out']}")

    cbs, guard, checkpoint_cb = _callbacks(config, model, store, spec, initial_epoch)
    tracker = faults.StepTracker(log=log)
    cbs += [sample_quality_cb] if sample_quality_cb else []
    metrics_path = os.path.join(config.run_dir, "metrics.json")

    def diverged(reason):
        """The TrainingDiverged for `reason`, recorded in metrics.json first."""
        metrics.update(status="diverged", reason=reason, last_checkpoint_epoch=checkpoint_cb.last_saved)
        if chief:
            write_json(metrics_path, metrics)
        return TrainingDiverged(
            f"{reason}; stopped, newest checkpoint is from epoch {checkpoint_cb.last_saved or initial_epoch or 'none'}"
        )

    start = time.time()
    try:
        history = model.fit(
            train_ds, epochs=t.epochs, steps_per_epoch=steps, initial_epoch=initial_epoch,
            validation_data=val_ds, validation_freq=t.validation_freq, callbacks=[*cbs, preemption, tracker],
            verbose=t.verbose,
        )
    except faults.PEER_ERRORS as e:
        if workers < 2:
            raise
        raise faults.peer_lost(e, tracker, config.checkpoint_dir) from None
    except tf.errors.InvalidArgumentError as e:
        # Unguarded (faults.nonfinite: unguarded), a NaN or Inf batch fails the model's input check.
        if config.faults.nonfinite != "unguarded" or NONFINITE_INPUT_MESSAGE not in e.message:
            raise
        raise diverged(f"NaN or Inf in the input batch at epoch {tracker.epoch + 1}, batch "
                       f"{tracker.call_begins_at} (faults.nonfinite: unguarded checks no batch)") from None
    metrics["train_seconds"] = time.time() - start
    metrics["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    epochs_completed = initial_epoch + len(history.epoch)
    metrics["skipped_steps"] = guard.skipped
    metrics["epochs_completed"] = epochs_completed

    if guard.tripped:
        raise diverged(guard.tripped)
    preemption.check_not_signalled(strategy)
    status = "early_stopped" if epochs_completed < t.epochs else "completed"
    metrics["status"] = status
    early_stopping = next((cb for cb in cbs if isinstance(cb, keras.callbacks.EarlyStopping)), None)
    if early_stopping is not None and early_stopping.stopped_epoch > 0:
        # EarlyStopping put the best epoch's weights back after the last checkpoint was
        # written; save them as the newest checkpoint, so `tfgen export RUN_DIR` and
        # `--resume` start from the weights the held-out figures below describe.
        store.save(epochs_completed)
        metrics["best_epoch"] = early_stopping.best_epoch + 1  # Keras counts from 0
    metrics["held_out_split"], metrics["held_out"] = evaluate_held_out(model, dataset, t)
    log(f"held-out {metrics['held_out_split']}: {metrics['held_out']}")

    publish = fine_tune.decide(model, metrics)
    export_dir = (_export(config, model, strategy, dataset, metrics, fine_tune.lineage(dataset, metrics))
                  if config.export.enabled and publish else None)
    if chief:
        write_json(metrics_path, metrics)
    return TrainResult(config.run_dir, status, initial_epoch, epochs_completed, metrics, export_dir)


def export_run(run_dir, base_path, version=None, log_prob_samples=None):
    """Exports a training run's newest good checkpoint as a SavedModel version.

    Rebuilds the model from `RUN_DIR/model.json`, restores weights from the checkpoint
    directory named in `RUN_DIR/config.yaml`, and passes the run's data and held-out
    metrics (from `metrics.json`, if training finished) as export metadata.

    Args:
      log_prob_samples: K of an estimated `log_prob` in the export (the model's
        `log_prob_samples_key`), instead of the run's; the held-out metrics stay those
        of the run's K.

    Returns:
      The version directory written.
    """
    from tfgen.export.saved_model import export_model

    model_json, config_yaml = run_directory_files(run_dir)
    config = load_config(config_yaml)
    saved = read_json(model_json)
    if log_prob_samples is not None:
        key = get_model_class(saved["class_name"]).log_prob_samples_key
        if key is None:
            raise UserError(f"--log-prob-samples: {saved['class_name']} has an exact log_prob, with no samples to set")
        saved["config"][key] = check_log_prob_samples(log_prob_samples, "--log-prob-samples")
    model = build_model(saved["class_name"], saved["config"])
    store = callbacks_lib.CheckpointStore(
        config.checkpoint.directory or os.path.join(run_dir, "checkpoints"), model, keep=config.checkpoint.keep,
    )
    epoch = store.restore_latest_good(log=lambda m: print(f"tfgen export: {m}", flush=True))
    if not epoch:
        raise MissingPath(f"no good checkpoint in {store.directory}")
    metrics_path = os.path.join(run_dir, "metrics.json")
    metrics = read_json(metrics_path) if os.path.isfile(metrics_path) else {}
    training_data = {"data": config.data.to_load_dict(), "epochs": epoch,
                     "global_batch_size": config.training.batch_size}
    if model.data_spec.num_classes:  # the class prior of the Bayes classifier, as training records it
        from tfgen.data.datasets import load_dataset
        from tfgen.export.signatures import class_frequencies

        training_data["class_prior"] = class_frequencies(
            load_dataset(config.data.to_load_dict()).splits["train"].y, model.data_spec.num_classes)
    metadata = {
        "training_data": training_data,
        "metrics": ({"split": metrics.get("held_out_split"), **metrics.get("held_out", {})}
                    if metrics.get("epochs_completed") == epoch else {}),
    }
    return export_model(model, base_path, version=version, metadata=metadata)
