"""Training callbacks: crash-safe checkpoints, NaN guard, sample summaries.

Checkpoints use `tf.train.CheckpointManager` (model, every optimizer and epoch counter), one
checkpoint per saved epoch, numbered by that epoch. TensorFlow writes a checkpoint's
data to a temporary file before renaming it and updates the `checkpoint` state file
atomically, but a disk that fills up or a copy that stops half-way can still leave a
damaged newest checkpoint. So restore never trusts the newest one: `CheckpointStore`
reads every tensor of a candidate (TensorFlow checks each tensor's CRC32C as it reads)
and checks float tensors are finite, falling back to older checkpoints until one is
good. A restart after a kill therefore always resumes, which an in-place backup file
(Keras 3's BackupAndRestore; docs/architecture.md, "Pitfalls") cannot promise.
"""

import glob
import math
import os
import re

import numpy as np

from tfgen.backend import keras, tf
from tfgen.training import strategy as strategy_lib
from tfgen.training import summaries

_PREFIX = "ckpt"


def checkpoint_epoch(prefix):
    """The epoch a checkpoint prefix (".../ckpt-12") was saved after."""
    return int(re.search(rf"{_PREFIX}-(\d+)$", prefix).group(1))


def checkpoint_problem(prefix):
    """Why the checkpoint at `prefix` can't be restored, or None if it is good.

    Reads every tensor (so a truncated or corrupted data file fails its checksum) and
    checks that every float tensor is finite.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name, dtype in reader.get_variable_to_dtype_map().items():
            value = reader.get_tensor(name)
            if dtype.is_floating and not np.all(np.isfinite(value)):
                return f"non-finite values in {name}"
    except Exception as e:  # noqa: BLE001  (OpError, IndexError, ...: all mean damaged)
        return f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return None


def all_finite(variables):
    """Whether every value of every variable is finite (a NaN guard for saves)."""
    return all(np.all(np.isfinite(v.numpy())) for v in variables if v.dtype.is_floating)


class CheckpointStore:
    """The checkpoints of one run: model + optimizers + epoch, newest good one restorable.

    Args:
      directory: the run's checkpoint directory.
      model: the model; if compiled, every optimizer it declares is checkpointed with
        it (an uncompiled model restores its weights only, e.g. for export).
      keep: how many recent checkpoints to keep.
      strategy: the model's `tf.distribute` strategy. Non-chief workers of a
        multi-worker run save to a private temporary directory (their save ops must run,
        their files are not wanted).
    """

    def __init__(self, directory, model, keep=3, strategy=None):
        self.directory = directory
        self.model = model
        strategy = strategy or tf.distribute.get_strategy()
        self.write_directory = strategy_lib.write_dir(directory, strategy)
        # A plain (not mirrored) variable: every worker holds the same epoch anyway.
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        # A compiled model tracks its optimizers itself, so checkpointing the model saves
        # every optimizer's state too.
        self.optimizers = dict(getattr(model, "optimizers", None) or {})
        self.checkpoint = tf.train.Checkpoint(model=model, epoch=self.epoch)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.write_directory, max_to_keep=keep, checkpoint_name=_PREFIX
        )

    def variables(self):
        return list(self.model.weights) + [v for o in self.optimizers.values() for v in o.variables]

    def save(self, epoch):
        """Saves after `epoch` epochs; refuses (returns None) if any value is non-finite."""
        if not all_finite(self.variables()):
            return None
        self.epoch.assign(epoch)
        return self.manager.save(checkpoint_number=epoch)

    def candidates(self, directory=None):
        """Checkpoint prefixes in `directory` (default: this run's), newest first.

        Found from the files themselves, not only the `checkpoint` state file, so a
        damaged state file does not hide good checkpoints.
        """
        directory = directory or self.directory
        prefixes = {p[: -len(".index")] for p in glob.glob(os.path.join(directory, f"{_PREFIX}-*.index"))}
        return sorted(prefixes, key=checkpoint_epoch, reverse=True)

    def restore_latest_good(self, log=print):
        """Restores the newest checkpoint that reads back whole and finite.

        Damaged newer checkpoints are renamed aside (`*.damaged`) so the manager never
        lists them again, and the temporary files of a save that was killed half-way
        (`*_temp*`) are removed.

        Returns:
          The epoch restored, or 0 if there is no good checkpoint (weights untouched).
        """
        if self.write_directory == self.directory:
            for path in glob.glob(os.path.join(self.directory, f"{_PREFIX}-*_temp*")):
                tf.io.gfile.rmtree(path) if os.path.isdir(path) else os.remove(path)
        for prefix in self.candidates():
            problem = checkpoint_problem(prefix)
            if problem is None:
                status = self.checkpoint.restore(prefix).assert_existing_objects_matched()
                if not self.optimizers:
                    status.expect_partial()
                log(f"restored {prefix} (epoch {int(self.epoch.numpy())})")
                return int(self.epoch.numpy())
            log(f"skipping damaged checkpoint {prefix}: {problem}")
            if self.write_directory == self.directory:
                for path in glob.glob(prefix + ".*"):
                    os.replace(path, path + ".damaged")
        return 0

    def close(self):
        strategy_lib.cleanup_write_dir(self.write_directory, self.directory)


class CheckpointCallback(keras.callbacks.Callback):
    """Saves a `CheckpointStore` every `every` epochs and after the last epoch.

    Never saves non-finite weights: a tripped `NaNGuard` or any non-finite variable
    skips the save, so the newest checkpoint is always one to resume from.
    """

    def __init__(self, store, every=1, total_epochs=None, nan_guard=None, log=print):
        super().__init__()
        self.store, self.every, self.total_epochs = store, every, total_epochs
        self.nan_guard, self.log = nan_guard, log
        self.last_saved = None
        self._last_done = None

    def _save(self, done):
        if self.nan_guard is not None and self.nan_guard.tripped:
            return
        if self.store.save(done) is None:
            self.log(f"epoch {done}: non-finite weights, checkpoint NOT written")
            return
        self.last_saved = done

    def on_epoch_end(self, epoch, logs=None):
        self._last_done = epoch + 1
        if self._last_done % self.every == 0 or self._last_done == self.total_epochs:
            self._save(self._last_done)

    def on_train_end(self, logs=None):
        # A run stopped early between two `every` epochs still leaves its last epoch.
        if self._last_done is not None and self.last_saved != self._last_done:
            self._save(self._last_done)
        self.store.close()


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss or weight.

    Every loss the model reports (`model.reported_losses`) is checked after every batch
    and the weights after every epoch, before
    `CheckpointCallback` runs (list this callback first). `tripped` holds the reason.
    Under a multi-worker strategy every worker sees the same (all-reduced) loss and
    weights, so all stop together.

    Args:
      step_guard: the model's `tfgen.training.faults.NonFiniteStepGuard`, if any: a
        step it found non-finite stops training, or, if the guard skipped it, is logged
        and counted instead, up to `max_skipped` skips.
      max_skipped: skips allowed before stopping anyway (None: stop at the first).
      log: a print function.
    """

    def __init__(self, step_guard=None, max_skipped=None, log=print):
        super().__init__()
        self.tripped = None
        self._epoch = 0
        self.step_guard, self.max_skipped, self.log = step_guard, max_skipped, log
        self.bad_steps = self.bad_batches = 0

    @property
    def skipped(self):
        """Steps whose update was not applied in this run."""
        return self.bad_steps if self.step_guard is not None and self.step_guard.skip_bad_steps else 0

    def _trip(self, reason):
        self.tripped = reason
        self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        bad_steps = int(self.step_guard.bad_steps.numpy()) if self.step_guard is not None else 0
        if bad_steps > self.bad_steps:
            self.bad_steps = bad_steps
            bad_batches = int(self.step_guard.bad_batches.numpy())
            what = "NaN or Inf in the input batch" if bad_batches > self.bad_batches else "non-finite loss or gradients"
            self.bad_batches = bad_batches
            where = f"epoch {self._epoch + 1}, batch {batch + 1}"
            if not self.step_guard.skip_bad_steps:
                self._trip(f"{what} at {where} (nothing from this step on is saved)")
            elif self.max_skipped is None or self.skipped > self.max_skipped:
                self._trip(f"{what} at {where} (update not applied; {self.skipped} skipped in this run)")
            else:
                self.log(f"skipped a non-finite step at {where} ({what}): weights unchanged "
                         f"({self.skipped} of at most {self.max_skipped} skipped)")
            return
        for name in self.model.reported_losses:
            value = logs.get(name)
            if value is not None and not math.isfinite(float(value)) and not self.tripped:
                self._trip(f"non-finite {name} {float(value)} at epoch {self._epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        if not self.tripped and not all_finite(self.model.weights):
            self._trip(f"non-finite weights after epoch {epoch + 1}")


def _scatter_image(points, spec):
    """A `[1, H, W, 4]` uint8 scatter plot of 2-D samples."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=64)
    ax.scatter(points[:, 0], points[:, 1], s=3)
    if spec.low is not None and spec.high is not None:
        ax.set_xlim(spec.low, spec.high)
        ax.set_ylim(spec.low, spec.high)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return tf.image.decode_png(buf.getvalue(), channels=4)[None]


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard scalars every epoch: `log_dir/train` (what `train_step` reports and
    each optimizer's learning rate) and `log_dir/validation` (the `val_` figures), step =
    epochs done. Chief only.

    Written with core TensorFlow (`tfgen.training.summaries`), as Keras' TensorBoard
    callback needs the `tensorboard` package.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._writers = {}

    def _writer(self, name):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(os.path.join(self.log_dir, name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        if not strategy_lib.is_chief(self.model.distribute_strategy):
            return
        logs = dict(logs or {})
        optimizers = self.model.optimizers
        for name, optimizer in optimizers.items():
            logs["learning_rate" if len(optimizers) == 1 else f"{name}_learning_rate"] = optimizer.learning_rate
        for split, prefix in (("train", ""), ("validation", "val_")):
            values = {k[len(prefix):]: v for k, v in logs.items() if k.startswith(prefix) and (prefix or not k.startswith("val_"))}
            if not values:
                continue
            with self._writer(split).as_default():
                for name, value in values.items():
                    summaries.scalar(f"epoch_{name}", value, step=epoch + 1)
            self._writer(split).flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()


class SampleSummaries(keras.callbacks.Callback):
    """Writes samples from fixed seeds to TensorBoard every `every` epochs (chief only).

    Images go out as one grid (`tfgen.data.visualize.image_grid`); 2-D vectors as a
    scatter plot; other data kinds are skipped. Conditional models cycle through the
    classes.

    Args:
      log_dir: the run's TensorBoard directory (written to `log_dir/samples`).
      spec: the model's `DataSpec`.
      every: epochs between summaries.
      num_samples: samples per summary.
      seed: first of the `num_samples` consecutive sample seeds.
    """

    def __init__(self, log_dir, spec, every=5, num_samples=36, seed=0):
        super().__init__()
        self.log_dir, self.spec, self.every = log_dir, spec, every
        self.num_samples, self.seed = num_samples, seed
        self._writer = None

    @staticmethod
    def supports(spec):
        return spec.kind == "image" or (spec.kind == "vector" and spec.event_shape == (2,))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every or not strategy_lib.is_chief(self.model.distribute_strategy):
            return
        seeds = tf.range(self.num_samples, dtype=tf.int64) + self.seed
        condition = None
        if self.spec.conditional:
            condition = tf.range(self.num_samples, dtype=tf.int32) % self.spec.num_classes
        samples = self.model.sample(seeds, condition=condition).numpy()
        if self.spec.kind == "image":
            from tfgen.data.visualize import image_grid

            image = np.asarray(image_grid(samples, self.spec))
            image = image.reshape((1,) + image.shape[:2] + (-1,))
        else:
            image = _scatter_image(samples, self.spec)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "samples"))
        with self._writer.as_default():
            summaries.image("samples", image, step=epoch + 1)
        self._writer.flush()
