"""deploy/kubernetes/tfgen-train-2-workers.yaml is a cluster tfgen can train on: parsed
(yaml.safe_load) and checked object by object, not applied (there is no cluster here)."""

import json
import os
import shlex

import yaml

from tfgen.training.config import parse_config
from tfgen.training.strategy import read_tf_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFEST = os.path.join(ROOT, "deploy", "kubernetes", "tfgen-train-2-workers.yaml")


def load(kind):
    with open(MANIFEST) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return [d for d in docs if d["kind"] == kind]


def test_every_pod_has_a_tf_config_naming_the_same_cluster_and_its_own_index():
    jobs, services = load("Job"), {s["metadata"]["name"]: s for s in load("Service")}
    clusters, indices = [], []
    for job in jobs:
        pod = job["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        tf_config = read_tf_config(env)  # the check tfgen itself runs at start
        clusters.append(tf_config["cluster"])
        indices.append(tf_config["task"]["index"])
        assert tf_config["task"]["type"] == "worker"
        # This pod is reachable at its own address in the cluster: a Service of that
        # name selecting this pod, on the port the container listens on.
        host, port = tf_config["cluster"]["worker"][tf_config["task"]["index"]].split(":")
        service = services[host]
        assert service["spec"]["clusterIP"] == "None"  # headless: DNS points at the pod
        assert all(pod["metadata"]["labels"][k] == v for k, v in service["spec"]["selector"].items())
        assert int(port) in [p["port"] for p in service["spec"]["ports"]]
        assert int(port) in [p["containerPort"] for p in container["ports"]]
        assert pod["spec"]["restartPolicy"] == "OnFailure"  # exit 3 / 143 -> restart and resume
    assert all(c == clusters[0] for c in clusters)
    assert sorted(indices) == list(range(len(clusters[0]["worker"]))) == [0, 1]
    # No two Services select the same pods.
    selectors = [json.dumps(s["spec"]["selector"], sort_keys=True) for s in services.values()]
    assert len(set(selectors)) == len(selectors)


def test_every_pod_runs_the_same_resumable_command_on_a_shared_run_dir():
    jobs = load("Job")
    (config_map,) = load("ConfigMap")
    (claim,) = load("PersistentVolumeClaim")
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    commands = {json.dumps(job["spec"]["template"]["spec"]["containers"][0]["command"]) for job in jobs}
    assert len(commands) == 1
    command = json.loads(commands.pop())
    assert command[:2] == ["tfgen", "train"] and "--resume" in command, shlex.join(command)
    for job in jobs:
        spec = job["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        config_dir, config_file = os.path.split(command[2])
        assert volumes[mounts[config_dir]]["configMap"]["name"] == config_map["metadata"]["name"]
        config = parse_config(yaml.safe_load(config_map["data"][config_file]))
        assert config.strategy.name == "multi_worker"
        # Checkpoints and the export live on the shared claim, seen by every worker.
        run_mount = next(path for path in mounts if config.run_dir.startswith(path + "/"))
        assert volumes[mounts[run_mount]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert config.checkpoint_dir.startswith(run_mount + "/")
        assert config.export.base_path.startswith(run_mount + "/")
        # The step checkpoint after SIGTERM must finish before Kubernetes' SIGKILL.
        assert config.faults.preemption_grace_seconds < spec["terminationGracePeriodSeconds"]
