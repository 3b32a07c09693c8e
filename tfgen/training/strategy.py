"""The `tf.distribute` strategy a training config asks for.

- `default`: `tf.distribute.get_strategy()`, one device.
- `mirrored`: `MirroredStrategy` over the local devices (all GPUs, else the CPU).
- `multi_worker`: `MultiWorkerMirroredStrategy`; the cluster and this process's role come
  from the `TF_CONFIG` environment variable (examples in `tf_configs/cluster/`). Create
  it before any other TensorFlow op runs in the process: collective ops are configured
  when the eager context starts.
- `tpu`: `TPUClusterResolver` -> `initialize_tpu_system` -> `TPUStrategy`. This path is
  written to the TensorFlow documentation but is NOT tested here (no TPU available).
"""

import json
import os
import tempfile

from tfgen.backend import tf
from tfgen.errors import UserError


def read_tf_config(environ=None):
    """The parsed and checked `TF_CONFIG` of a multi-worker process.

    Returns:
      The dict, with `cluster.worker` a non-empty list of "host:port" and `task` a
      `{"type": "worker"|"chief", "index": int}` naming a member of the cluster.

    Raises:
      ValueError: one line saying what is missing or malformed.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG")
    hint = "see tf_configs/cluster/README.md"
    if not raw:
        raise UserError(f"strategy 'multi_worker' needs the TF_CONFIG environment variable; {hint}")
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UserError(f"TF_CONFIG is not valid JSON ({e}); {hint}") from None
    if not isinstance(tf_config, dict):
        raise UserError(f"TF_CONFIG must be a JSON object with 'cluster' and 'task'; {hint}")
    cluster, task = tf_config.get("cluster"), tf_config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise UserError(f"TF_CONFIG has no 'cluster' mapping of job name -> addresses; {hint}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise UserError(f"TF_CONFIG cluster.{job} must be a list of 'host:port' strings; {hint}")
    if not cluster.get("worker") and not cluster.get("chief"):
        raise UserError(f"TF_CONFIG cluster has no 'worker' (or 'chief') addresses; {hint}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise UserError(f"TF_CONFIG needs 'task': {{'type': 'worker', 'index': N}}; {hint}")
    job, index = task["type"], task["index"]
    if job not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[job]):
        raise UserError(f"TF_CONFIG task {job}:{index} is not a member of the cluster; {hint}")
    return tf_config


def is_chief(strategy):
    """Whether this process writes checkpoints, logs, run files and exports.

    The chief is task `chief:0`, else `worker:0`; every process of a single-worker
    strategy is its own chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def num_workers(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    jobs = resolver.cluster_spec().as_dict()
    return max(1, len(jobs.get("worker", [])) + len(jobs.get("chief", [])))


def write_dir(directory, strategy):
    """Where this process writes what the chief writes to `directory`.

    Every worker must run the same save ops (they may hold collectives), but only the
    chief's files are real: others write to a private temporary directory (the recipe
    of the Keras multi-worker guide) which `cleanup_write_dir` removes.
    """
    if is_chief(strategy):
        return directory
    resolver = strategy.cluster_resolver
    return tempfile.mkdtemp(prefix=f"tfgen-{resolver.task_type}{resolver.task_id}-")


def cleanup_write_dir(path, directory):
    if path != directory:
        tf.io.gfile.rmtree(path)


def resolve_strategy(config, peer_timeout_seconds=30.0):
    """The strategy for a `StrategyConfig` (see the module docstring).

    Args:
      peer_timeout_seconds: multi_worker: how long a worker may miss heartbeats before
        the others declare it lost (`tfgen.training.faults.configure_coordination`).
    """
    name = config.name
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=config.devices)
    if name == "multi_worker":
        read_tf_config()
        from tfgen.training.faults import configure_coordination

        configure_coordination(peer_timeout_seconds)
        implementation = {
            "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
            "ring": tf.distribute.experimental.CommunicationImplementation.RING,
            "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
        }[config.communication]
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(implementation=implementation)
        )
    if name == "tpu":
        # Untested here: follows https://www.tensorflow.org/guide/tpu.
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=config.tpu, zone=config.zone, project=config.project
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise UserError(f"unknown strategy {name!r}")
