"""Training that survives faults: a lost peer, a preemption, a non-finite step, workers
that disagree. Configured by the `faults:` section (`tfgen.training.config.FaultsConfig`).

- **A lost peer** (a worker killed, its machine gone): the coordination service that
  `MultiWorkerMirroredStrategy` runs on stops hearing the peer's heartbeat after
  `faults.peer_timeout_seconds` and aborts the collectives the others wait in (a
  refused connection on a live machine aborts them at once). The survivors raise
  `PeerLost`, one line naming the epoch and step, and exit; restarting every worker with
  `--resume` continues from the newest good checkpoint.
- **A preemption** (SIGTERM, what Kubernetes and most schedulers send first):
  `tf.distribute.experimental.PreemptionCheckpointHandler` agrees on a step across the
  workers (through the coordination service), every worker saves a step checkpoint in
  `CHECKPOINT_DIR/preempted/` after it and raises `Preempted`. `--resume` restores it
  and `fit` continues from the next step of that epoch, not from the epoch's start.
- **A non-finite step**: `NonFiniteStepGuard` sits in the shared `minimize()` of every
  family: gradients are summed across replicas first, and a step whose batch (NaN or
  Inf in the input), loss or summed gradients are not finite is found on every replica
  alike. `faults.nonfinite: skip` applies nothing for it (weights and optimizer state
  unchanged, the epoch's running metrics restored), counts and logs it and goes on;
  `stop` (the default) stops training after it with one line naming the epoch and
  batch, and, since nothing from that step on is saved, lets its update run rather than
  make every update wait for the check. Either way no checkpoint holds a non-finite
  value. `unguarded` installs no guard (as Keras: the update is applied, a non-finite
  loss stops training after it, no checkpoint is written from then on).
- **Workers that disagree**: before training each worker publishes its resolved config
  and its training data's fingerprint; a worker whose either differs from the chief's
  is refused, on every worker, with the first difference named.
"""

import hashlib
import json
import os
import signal
import threading
import time

import numpy as np

from tfgen.backend import keras, tf
from tfgen.errors import PathExists, UserError
from tfgen.metrics.means import FigureMeans
from tfgen.training import strategy as strategy_lib

#: Exit codes of `tfgen train` for the interruptions below (a supervisor restarts on them).
EXIT_PEER_LOST = 3
EXIT_PREEMPTED = 143  # 128 + SIGTERM, what a process killed by SIGTERM reports

# Errors a collective raises when a peer is gone (refused connection, missed heartbeats,
# aborted by the coordination service).
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError,
               tf.errors.CancelledError)


class TrainingInterrupted(RuntimeError):
    """Training stopped by a fault it survives by a restart with `--resume`."""

    exit_code = 1


class PeerLost(TrainingInterrupted):
    """Another worker of the cluster stopped answering."""

    exit_code = EXIT_PEER_LOST


class Preempted(TrainingInterrupted):
    """SIGTERM: a step checkpoint was saved and training stopped."""

    exit_code = EXIT_PREEMPTED


# === The cluster ===
def configure_coordination(peer_timeout_seconds, environ=None):
    """Starts the coordination service of a multi-worker run with tfgen's timeouts.

    `MultiWorkerMirroredStrategy` configures the service itself unless one is already
    configured, with a fixed heartbeat timeout; this configures the same service (same
    leader, same jobs) first, so `faults.peer_timeout_seconds` decides how long a silent
    peer may take before the survivors stop. Call before the strategy is created.
    """
    # Not in TensorFlow's public API; the same calls MultiWorkerMirroredStrategy makes.
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return
    spec = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
            for job in ("chief", "worker") if job in spec.jobs]
    leader = "chief" if "chief" in spec.jobs else "worker"
    timeout_ms = int(peer_timeout_seconds * 1000)
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{leader}/replica:0/task:0", coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=timeout_ms, shutdown_barrier_timeout_in_ms=timeout_ms,
    )


def _flatten(data, prefix=""):
    if isinstance(data, dict):
        flat = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: data}


#: Config keys that may differ between workers: where each writes, and how chatty it is.
PER_WORKER_KEYS = ("run_dir", "checkpoint.directory", "training.verbose")


def fingerprint(config, dataset):
    """What every worker of one run must agree on: `{"config": {key: value},
    "data": sha256 of the training split}` (paths each worker writes to excluded)."""
    flat = {k: v for k, v in _flatten(config.to_dict()).items()
            if not k.startswith("export.") and k not in PER_WORKER_KEYS}
    digest = hashlib.sha256()
    train = dataset.splits["train"]
    for array in (train.x, train.y):
        if array is not None:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
    return {"config": flat, "data": digest.hexdigest()}


def describe_difference(name, mine, theirs, their_name):
    """One line naming the first difference between two fingerprints, or None."""
    if mine["data"] != theirs["data"]:
        return (f"{name}'s training data (sha256 {mine['data'][:12]}) differs from {their_name}'s "
                f"(sha256 {theirs['data'][:12]})")
    for key in sorted(set(mine["config"]) | set(theirs["config"])):
        a, b = mine["config"].get(key), theirs["config"].get(key)
        if a != b:
            return f"config key '{key}' is {a!r} on {name} but {b!r} on {their_name}"
    return None


def check_workers_agree(config, dataset, strategy, timeout_seconds=120):
    """Refuses to train unless every worker has the chief's config and data.

    Each worker publishes its fingerprint in the coordination service's key-value
    store, reads everyone's, and raises `UserError` naming the first difference, so
    every worker stops with the same message instead of training a silently different
    model (or hanging in a collective whose shapes differ).
    """
    from tensorflow.python.eager import context

    resolver = strategy.cluster_resolver
    jobs = resolver.cluster_spec().as_dict()
    members = [(job, i) for job in ("chief", "worker") for i in range(len(jobs.get(job, [])))]
    mine = fingerprint(config, dataset)
    key = "tfgen/fingerprint/{}/{}"
    context.context().set_config_key_value(key.format(resolver.task_type, resolver.task_id), json.dumps(mine))
    prints = {}
    for job, index in members:
        raw = context.context().get_config_key_value(key.format(job, index), timeout_in_ms=timeout_seconds * 1000)
        prints[f"{job} {index}"] = json.loads(raw)
    (chief, reference), *others = prints.items()
    for name, theirs in others:
        problem = describe_difference(name, theirs, reference, chief)
        if problem:
            raise UserError(f"workers disagree: {problem}; every worker must run the same config on the same data")


# === Non-finite steps ===
class NonFiniteStepGuard:
    """Finds the steps whose batch, loss or replica-summed gradients are not finite and,
    with `skip_bad_steps`, applies no update for them.

    Installed on a model (`install_step_guard`), it is what the shared
    `GenerativeModel.minimize` calls, so every family gets it. Gradients and losses are
    summed across replicas before the check, and whether any replica's batch was
    non-finite is all-reduced, so all replicas and workers take the same decision and
    stay in step. A batch holding NaN or Inf is replaced by zeros (a valid input of every
    model, so the models' own input checks pass) and its step counted as bad.

    Without `skip_bad_steps` (the `stop` policy) the check only finds the step: its
    update runs as it would unguarded, training stops after it (`NaNGuard`) and nothing
    from then on is saved. It costs the check's few ops, not the wait (below).

    With `skip_bad_steps` (the `skip` policy) a bad step changes no weight and no
    optimizer state (not even the iteration count a learning-rate schedule reads). A
    batch holding NaN or Inf also leaves the rest of the model's state alone (batch-norm
    statistics, a GAN's EMA, spectral-norm vectors); a finite batch whose loss overflows
    may still move that state in its forward pass, and a non-finite value there stops the
    run at the epoch's weight check (`NaNGuard`), before any checkpoint. How a step is
    skipped depends on the strategy. Under the default strategy (one device, no strategy
    scope) nothing needs synchronizing, so the skip is plain control flow: each update is
    applied under `tf.cond(bad, no-op, apply)`, and a good step copies nothing. (A
    `tf.cond` around the whole step, for a non-finite batch, made the XLA-compiled DCGAN
    step 3.5x slower; such a batch is handled as below.) Under a distribution strategy
    `apply_gradients` synchronizes replicas (a merge_call), which TensorFlow forbids
    inside a `tf.cond`, so the update cannot be made conditional; instead a bad step first
    copies what the update writes into backup variables (under a `tf.cond` in the replica
    context, which needs no synchronization), lets the update run, and copies it back
    (under a `tf.cond` in the cross-replica context). Under either, a non-finite batch
    also backs up the model's other state under a `tf.cond` and puts it back at the
    step's end. Either way every update waits for the finiteness of all its gradients,
    where an unguarded one starts as its gradient arrives: 5-10% of a GAN step
    (docs/benchmarks.md, "GAN training").

    Counters and backups are per-replica (sync-on-read) variables outside the model, so
    checkpoints do not hold them; every replica counts the same bad steps and a read
    gives the first one's.

    Args:
      model: the compiled model; its optimizers are built here if they are not yet.
      skip_bad_steps: apply no update for a bad step (else only find it).
    """

    def __init__(self, model, skip_bad_steps=True):
        self.skip_bad_steps = skip_bad_steps
        self._local = threading.local()  # what each replica thread's trace of a step checked
        per_replica = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        metric_refs = {v.ref() for m in model.metrics for v in m.variables}
        updated = []
        with model.distribute_strategy.scope():
            # The default strategy's scope is no strategy: updates need no merge_call there.
            self.synchronized = tf.distribute.has_strategy()
            self.bad_steps = tf.Variable(0, dtype=tf.int64, name="nonfinite_steps", **per_replica)
            self.bad_batches = tf.Variable(0, dtype=tf.int64, name="nonfinite_batches", **per_replica)
            self.last_step_bad = tf.Variable(False, name="last_step_nonfinite", **per_replica)
            for name, optimizer in model.optimizers.items():
                optimizer.build(model.variables_for_optimizer(name))
                updated += [*model.variables_for_optimizer(name), *optimizer.variables]
            refs = {v.ref() for v in updated}
            # The model's other state: what a forward pass or a step's end may change.
            self._state = [] if not skip_bad_steps else [
                v for v in model.variables if v.ref() not in refs and v.ref() not in metric_refs]
            # Under the default strategy an update is skipped by a tf.cond: only the state needs backups.
            self._backups = {v.ref(): tf.Variable(tf.zeros(v.shape, v.dtype), name="backup", **per_replica)
                             for v in (updated if self.synchronized and skip_bad_steps else []) + self._state}

    def _back_up(self, variables):
        return tf.group([self._backups[v.ref()].assign(v) for v in variables])

    def _put_back(self, variables, bad):
        """In the replica context: copies the backups of `variables` back if `bad`."""
        if not self.synchronized:
            return tf.cond(bad, lambda: tf.group([v.assign(self._backups[v.ref()]) for v in variables]), tf.no_op)

        def put_back(strategy, bad):
            # Every replica decided alike (from all-reduced figures): read the first.
            bad = strategy.experimental_local_results(bad)[0]

            def restore():
                return tf.group([strategy.extended.update(v, lambda var, value: var.assign(value),
                                                          args=(self._backups[v.ref()],)) for v in variables])

            return tf.cond(bad, restore, tf.no_op)

        return tf.distribute.get_replica_context().merge_call(put_back, args=(bad,))

    def begin_step(self, x):
        """`x` with a non-finite batch replaced by zeros, the step then counted as bad on
        every replica. Call in the replica context before the step computes anything."""
        finite = tf.reduce_all(tf.math.is_finite(x))
        bad_batch = tf.logical_not(finite)
        if self.synchronized:
            context = tf.distribute.get_replica_context()
            bad_batch = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(bad_batch, tf.float32)) > 0
        self._local.bad_batch = bad_batch
        self.last_step_bad.assign(bad_batch)
        self.bad_batches.assign_add(tf.cast(bad_batch, tf.int64))
        backed_up = [tf.cond(bad_batch, lambda: self._back_up(self._state), tf.no_op)] if self._state else []
        with tf.control_dependencies(backed_up):
            return tf.where(finite, x, tf.zeros_like(x))

    def end_step(self):
        """Counts a bad step; puts back the model's state if its batch was non-finite."""
        counted = self.bad_steps.assign_add(tf.cast(self.last_step_bad, tf.int64))
        bad_batch = getattr(self._local, "bad_batch", None)
        if bad_batch is None or not self._state:
            return counted
        return tf.group(counted, self._put_back(self._state, bad_batch))

    def apply(self, optimizer, gradients, variables, loss):
        context = tf.distribute.get_replica_context()
        pairs = [(tf.convert_to_tensor(g), v) for g, v in zip(gradients, variables) if g is not None]
        pairs = optimizer.aggregate_gradients(pairs)
        loss_sum = context.all_reduce(tf.distribute.ReduceOp.SUM, loss)
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in [loss_sum] + [g for g, _ in pairs]])
        bad = tf.logical_not(finite)
        bad_batch = getattr(self._local, "bad_batch", None)
        if bad_batch is not None:
            bad = tf.logical_or(bad, bad_batch)
        if not self.skip_bad_steps:
            optimizer.apply_gradients(pairs, skip_gradients_aggregation=True)
        elif not self.synchronized:
            tf.cond(bad, tf.no_op, lambda: tf.group(optimizer.apply_gradients(pairs, skip_gradients_aggregation=True)))
        else:
            protected = [v for _, v in pairs] + list(optimizer.variables)
            with tf.control_dependencies([tf.cond(bad, lambda: self._back_up(protected), tf.no_op)]):
                applied = optimizer.apply_gradients(pairs, skip_gradients_aggregation=True)
            with tf.control_dependencies([applied]):
                self._put_back(protected, bad)
        # A step may minimize several times (a GAN's two players): bad if any was.
        self.last_step_bad.assign(tf.logical_or(self.last_step_bad, bad))


def install_step_guard(model, skip_bad_steps=True):
    """Puts a `NonFiniteStepGuard` into `model` (its `minimize` uses it) and wraps its
    `train_step`: a batch holding NaN or Inf is replaced by zeros and its step counted
    as bad (the models' input checks would otherwise fail the run). With
    `skip_bad_steps` a bad step is skipped and its batch taken out of the running
    metrics (a non-finite value there would poison the epoch's figures and checkpoint);
    without, training is to stop after it, and its figures stand as it computed them."""
    guard = NonFiniteStepGuard(model, skip_bad_steps=skip_bad_steps)
    model.step_guard = guard
    family_train_step = model.train_step

    def train_step(data):
        if isinstance(data, (tuple, list)):
            data = (guard.begin_step(data[0]), *data[1:])
        else:
            data = guard.begin_step(data)
        if not skip_bad_steps:
            logs = family_train_step(data)
            with tf.control_dependencies(tf.nest.flatten(logs)):
                guard.end_step()  # a stateful op: the step's function runs it
            return logs
        metric_variables = [v for m in model.metrics for v in m.variables]
        before = [tf.identity(v) for v in metric_variables]  # a few scalars
        logs = family_train_step(data)

        def restore_metrics():
            return tf.group([v.assign(old) for v, old in zip(metric_variables, before)])

        with tf.control_dependencies(tf.nest.flatten(logs)):
            restored = [guard.end_step(), tf.cond(guard.last_step_bad, restore_metrics, tf.no_op)]
        if isinstance(logs, dict):
            # Report the restored figures, so the skipped batch shows no non-finite value.
            with tf.control_dependencies(restored):
                current = {}
                for metric in model.metrics:
                    current.update(metric.results() if isinstance(metric, FigureMeans) else
                                   {metric.name: metric.result()})
                logs = {k: current[k] if k in current else tf.identity(v) for k, v in logs.items()}
        return logs

    model.train_step = train_step
    return guard


#: `faults.inject_value` -> what the injected batch holds.
INJECTED_VALUES = {"overflow": 1e30, "nan": float("nan"), "inf": float("inf")}


def inject_nonfinite_batch(dataset, step, kind="overflow"):
    """The training pipeline with its batch number `step` (from 0) replaced by one value
    (`INJECTED_VALUES[kind]`): "overflow" is finite input whose loss overflows, as a
    corrupted record does; "nan" and "inf" a batch that is itself non-finite. For fault
    drills (`faults.inject_nonfinite_at_step`, `faults.inject_value`)."""
    value = INJECTED_VALUES[kind]

    def replace(index, batch):
        x, *rest = batch if isinstance(batch, tuple) else (batch,)
        x = tf.where(index == step, tf.fill(tf.shape(x), tf.constant(value, x.dtype)), x)
        return (x, *rest) if rest else x

    return dataset.enumerate().map(replace)


# === Preemption ===
def preemption_dir(checkpoint_dir):
    return os.path.join(checkpoint_dir, "preempted")


def check_no_stale_preemption(checkpoint_dir, resume):
    """A preemption checkpoint is only restored by `--resume`; refuse to start over it."""
    directory = preemption_dir(checkpoint_dir)
    if not resume and tf.io.gfile.glob(os.path.join(directory, "ckpt-*.index")):
        raise PathExists(f"{directory} holds the checkpoint of a preempted run: pass --resume to continue it, "
                         "or --run-dir for a new one")


#: Name prefixes of the threads TensorFlow's `PreemptionCheckpointHandler` starts.
_HANDLER_THREADS = ("PeerTerminationWatcher-", "WorkerTerminationSignalWatcher-")


def _drop_handler_thread_peer_errors():
    """Installs (once) a `threading.excepthook` that drops a lost peer's error
    (`PEER_ERRORS`, as in the training thread) in the handler's watcher threads. They
    block on the coordination service, so when a peer dies their call fails too, and their
    traceback would follow the one-line `PeerLost` that the training thread reports for
    the same loss. Other exceptions, and other threads', go to the previous hook."""
    previous = threading.excepthook
    if getattr(previous, "tfgen_drops_handler_peer_errors", False):
        return

    def hook(args):
        name = args.thread.name if args.thread is not None else ""
        if not (name.startswith(_HANDLER_THREADS) and issubclass(args.exc_type, PEER_ERRORS)):
            previous(args)

    hook.tfgen_drops_handler_peer_errors = True
    threading.excepthook = hook


class PreemptionCheckpoint(keras.callbacks.Callback):
    """On SIGTERM, saves a step checkpoint at a step every worker agrees on, then raises
    `Preempted` (TensorFlow's `PreemptionCheckpointHandler`, driven once per batch).

    Constructing it restores the checkpoint of an earlier preemption, if any, over what
    is in the model; `resumed_at` is then `(epoch, step)` of that checkpoint (0-based
    epoch, steps done in it) and `fit` starts at the next step. The checkpoint is
    deleted once an epoch checkpoint supersedes it.

    Args:
      model: the compiled model (its optimizers are saved with it).
      directory: where the step checkpoint goes (`CHECKPOINT_DIR/preempted`; every
        worker must see the chief's).
      steps_per_epoch: steps in an epoch.
      grace_seconds: 0: save after the current step and stop. > 0: keep training and
        save the final checkpoint before this many seconds since SIGTERM have passed.
      chief: whether this process owns `directory` (deletes it when superseded).
      sigterm_at_step: fault drills and tests: this process sends itself SIGTERM as
        global step `sigterm_at_step` (from 0) begins (as the call of the train
        function holding it begins, with `compile(steps_per_execution=N)`). None: off.
      log: a print function.
    """

    def __init__(self, model, directory, steps_per_epoch, grace_seconds=0.0, chief=True, sigterm_at_step=None,
                 log=print):
        super().__init__()
        self.sigterm_at_step = sigterm_at_step
        strategy = model.distribute_strategy
        resolver = getattr(strategy, "cluster_resolver", None)
        if resolver is not None and not resolver.cluster_spec().jobs:
            resolver = None
        self.directory, self.steps_per_epoch, self.chief, self.log = directory, steps_per_epoch, chief, log
        with tf.init_scope():
            self.epoch = tf.Variable(-1, dtype=tf.int64, trainable=False, name="preempted_epoch")
            self.step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="preempted_step")
        checkpoint = tf.train.Checkpoint(model=model, epoch=self.epoch, step=self.step)
        latest = tf.train.latest_checkpoint(directory)
        if latest:
            # Every worker reads the chief's; the handler's step counter, attached to the
            # checkpoint below, is restored from it too (deferred restoration).
            checkpoint.restore(latest)
        # Non-chief workers save to a private directory (their save ops must run).
        self.write_directory = strategy_lib.write_dir(directory, strategy)
        _drop_handler_thread_peer_errors()
        self.handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            resolver, tf.train.CheckpointManager(checkpoint, self.write_directory, max_to_keep=1),
            termination_config=tf.distribute.experimental.TerminationConfig(
                grace_period=int(grace_seconds), exit_fn=self._stop),
        )
        self.resumed_at = None
        if int(self.epoch.numpy()) >= 0:
            self.resumed_at = (int(self.epoch.numpy()), int(self.step.numpy()) + 1)
        self.sigterm_at = None  # (time, epoch, steps done in it) when SIGTERM arrived
        handler_fn = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum, frame):
            self.sigterm_at = (time.time(), int(self.epoch.numpy()), int(self.step.numpy()) + 1)
            handler_fn(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    # The tf_keras hook `fit` asks for the (epoch, step) to start at (what its own
    # BackupAndRestore sets; not public, so kept to this one method).
    def maybe_load_initial_counters_from_ckpt(self, steps_per_epoch, initial_epoch, mode=None):
        if self.resumed_at is None:
            return initial_epoch, 0
        epoch, step = self.resumed_at
        return (epoch + 1, 0) if step >= steps_per_epoch else (epoch, step)

    def on_train_begin(self, logs=None):
        self.model._training_state = self

    # `step` is the last step done in `epoch` (-1: none yet): what a checkpoint saved now
    # holds. `fit` passes a call's first step to batch_begin and its last to batch_end,
    # the same step when each call runs one; the model's `steps_per_execution` variable
    # holds the steps of the call about to run (fit shortens an epoch's last call).
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)
        self.step.assign(-1)

    def on_train_batch_begin(self, batch, logs=None):
        if self.sigterm_at_step is not None:
            first = int(self.epoch.numpy()) * self.steps_per_epoch + batch
            if first <= self.sigterm_at_step < first + int(self.model.steps_per_execution.numpy()):
                os.kill(os.getpid(), signal.SIGTERM)

    def on_train_batch_end(self, batch, logs=None):
        self.step.assign(batch)
        self.handler.save_checkpoint_if_preempted()

    def on_epoch_end(self, epoch, logs=None):
        # Runs after CheckpointCallback: an epoch checkpoint of this epoch supersedes it.
        epoch_checkpoint = os.path.join(os.path.dirname(self.directory), f"ckpt-{epoch + 1}.index")
        if self.resumed_at is not None and self.chief and tf.io.gfile.exists(epoch_checkpoint):
            tf.io.gfile.rmtree(self.directory)
            self.resumed_at = None

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        self.model._training_state = None
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        strategy_lib.cleanup_write_dir(self.write_directory, self.directory)

    def check_not_signalled(self, strategy):
        """After `fit` returned: raises `Preempted` if SIGTERM reached any worker.

        TensorFlow's handler saves at the step after the one during which the signal
        came; during the final step there is none, and the run would go on to evaluate
        and export as if never signalled. Its epoch checkpoint holds everything, so the
        run stops there (every worker alike: the flag is all-reduced) and `--resume`
        evaluates and exports.
        """
        signalled = float(self.sigterm_at is not None)
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(signalled)), axis=None)
        if float(total) > 0:  # (on_train_end has closed the handler)
            raise Preempted("preempted after the last training step: the final epoch checkpoint is saved; held-out "
                            "evaluation and export did not run. Restart every worker with --resume to do them")

    def _stop(self):
        self._close()
        epoch, step = int(self.epoch.numpy()) + 1, int(self.step.numpy()) + 1
        detail = ""
        if self.sigterm_at is not None:
            seconds = time.time() - self.sigterm_at[0]
            lost = max(0, (self.sigterm_at[1] * self.steps_per_epoch + self.sigterm_at[2])
                       - ((epoch - 1) * self.steps_per_epoch + step))
            detail = f" {seconds:.1f} s after SIGTERM (received at epoch {self.sigterm_at[1] + 1} step " \
                     f"{self.sigterm_at[2]}; {lost} steps lost)"
        raise Preempted(f"preempted: saved a checkpoint at epoch {epoch} step {step}/{self.steps_per_epoch} in "
                        f"{self.directory}{detail}; restart every worker with --resume to continue from there")


# === Lost peers ===
class StepTracker(keras.callbacks.Callback):
    """Where training is, for the one-line error when it stops; logs the first step
    done (after a restart, the first new one)."""

    def __init__(self, log=print):
        super().__init__()
        self.epoch, self.step, self.log = 0, 0, log
        self._logged_first = False
        self.call_begins_at = 1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step = epoch, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.call_begins_at = batch + 1

    def on_train_batch_end(self, batch, logs=None):
        self.step = batch + 1
        if not self._logged_first:
            self._logged_first = True
            if self.call_begins_at == self.step:
                self.log(f"first step done at epoch {self.epoch + 1} step {self.step}")
            else:  # training.steps_per_execution > 1
                self.log(f"first steps done at epoch {self.epoch + 1} steps {self.call_begins_at}-{self.step} "
                         "(one call of the train function)")


def peer_lost(error, tracker, checkpoint_dir):
    """The `PeerLost` for a collective's `error`, naming where training stopped."""
    first_line = " ".join(str(error.message if hasattr(error, "message") else error).split())
    reason = "stopped sending heartbeats" if "heartbeat" in first_line else (
        "refused the connection" if "refused" in first_line.lower() else type(error).__name__)
    return PeerLost(
        f"lost a peer worker ({reason}) at epoch {tracker.epoch + 1} step {tracker.step}; stopped. Restart "
        f"every worker with --resume to continue from the newest checkpoint in {checkpoint_dir}")
