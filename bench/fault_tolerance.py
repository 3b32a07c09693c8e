"""Fault-tolerance figures of 2-worker MultiWorkerMirroredStrategy training, on loopback.

Per trial, a 2-worker `tfgen train` of a small RealNVP on two_moons is started, one
worker (alternating worker 1 and the chief) is SIGKILLed a random time after the
checkpoint of epoch 1, 2, 3, 1, ... (so trials resume from different checkpoints),
and the figures are:

- survivor exit: seconds from the SIGKILL to the surviving worker's exit;
- restart -> first step: seconds from starting both workers again with `--resume` to
  the chief's "first step done" line (process start, TF import, cluster, restore);
- steps lost: steps done before the kill that the resumed run does again;
- final loss: held-out NLL (nats) of the resumed run vs the same config uninterrupted.

One SIGTERM (preemption) trial gives the same figures for a preemption. Then the
throughput of 2 local workers vs 1 process on the same global batch (examples/s of
`fit`, from metrics.json's train_seconds). Every number comes from this one run.

Usage:

    python bench/fault_tolerance.py               # 5 SIGKILL trials + 1 SIGTERM + throughput
    python bench/fault_tolerance.py --trials 2 --epochs 3
    python bench/fault_tolerance.py --quick       # = --trials 2 --epochs 3
"""

import argparse
import glob
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import yaml

from tfgen.training.cluster import free_ports, tf_configs

PEER_TIMEOUT = 10


def config(epochs, num_samples=8000, strategy="multi_worker"):
    return {
        "model": {"class_name": "RealNVP", "config": {"steps_per_level": 2, "hidden_units": 16,
                                                       "num_hidden_layers": 1}},
        "data": {"name": "two_moons", "num_samples": num_samples, "seed": 0},
        "training": {"batch_size": 64, "epochs": epochs, "learning_rate": 3e-3, "seed": 0, "verbose": 0,
                     "eval_noise_draws": 1},
        "strategy": {"name": strategy},
        "checkpoint": {"keep": 3},
        "tensorboard": {"enabled": False},
        "export": {"enabled": False},
        "faults": {"peer_timeout_seconds": PEER_TIMEOUT},
    }


def write_config(directory, data, name="config.yaml"):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def start(config_path, run_dir, directory, tag, resume=False):
    procs = []
    for index, tf_config in enumerate(tf_configs(free_ports(2))):
        log = open(os.path.join(directory, f"{tag}-{index}.log"), "w")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tfgen", "train", config_path, "--run-dir", run_dir] + (["--resume"] if resume else []),
            env=dict(os.environ, TF_CONFIG=tf_config), stdout=log, stderr=subprocess.STDOUT))
    return procs


def read(directory, tag, index):
    with open(os.path.join(directory, f"{tag}-{index}.log")) as f:
        return f.read()


def wait_for(predicate, timeout=600):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        time.sleep(0.02)


def held_out_nll(run_dir):
    with open(os.path.join(run_dir, "metrics.json")) as f:
        return -json.load(f)["held_out"]["log_prob"]


def steps_done(line):
    """(epoch, step) of "... at epoch E step S ..." in a worker's message."""
    rest = line.split("at epoch ", 1)[1]
    epoch, rest = rest.split(" step ", 1)
    return int(epoch), int(rest.split("/")[0].split(";")[0].split(" ")[0])


def trial(directory, config_path, steps_per_epoch, fault, victim, delay, after_epoch):
    run_dir = os.path.join(directory, "run")
    procs = start(config_path, run_dir, directory, "first")
    wait_for(lambda: glob.glob(os.path.join(run_dir, "checkpoints", f"ckpt-{after_epoch}.index")))
    time.sleep(delay)
    procs[victim].send_signal(signal.SIGKILL if fault == "SIGKILL" else signal.SIGTERM)
    sent = time.monotonic()
    survivor = procs[1 - victim] if fault == "SIGKILL" else procs[victim]
    survivor.wait(timeout=120)
    exit_seconds = time.monotonic() - sent
    for proc in procs:
        proc.wait(timeout=120)
    message = [line for line in read(directory, "first", 1 - victim if fault == "SIGKILL" else victim).splitlines()
               if "lost a peer" in line or "preempted:" in line][-1]
    restarted_at = time.monotonic()
    procs = start(config_path, run_dir, directory, "resume", resume=True)
    wait_for(lambda: "first step done" in read(directory, "resume", 0))
    first_step_seconds = time.monotonic() - restarted_at
    first = next(line for line in read(directory, "resume", 0).splitlines() if "first step done" in line)
    for proc in procs:
        proc.wait(timeout=600)
    epoch, step = steps_done(message)
    if fault == "SIGTERM":  # the message says how many steps before the signal it lost
        lost = int(message.split(" steps lost")[0].rsplit("; ", 1)[-1])
    else:
        resumed_epoch, resumed_step = steps_done(first)
        lost = (epoch - 1) * steps_per_epoch + step - ((resumed_epoch - 1) * steps_per_epoch + resumed_step - 1)
    return {"fault": fault, "victim": "chief" if victim == 0 else "worker 1", "at": f"epoch {epoch} step {step}",
            "exit_seconds": exit_seconds, "first_step_seconds": first_step_seconds, "steps_lost": lost,
            "nll": held_out_nll(run_dir), "message": message.split("tfgen train: ", 1)[-1]}


def throughput(directory, epochs):
    """examples/s of `fit` with 2 local workers and with 1 process, same global batch."""
    figures = {}
    data = config(epochs, num_samples=16000)
    path = write_config(directory, data, "throughput.yaml")
    run_dir = os.path.join(directory, "tp2")
    for proc in start(path, run_dir, directory, "tp2"):
        proc.wait(timeout=900)
    for name, run in (("2 workers", run_dir),):
        with open(os.path.join(run, "metrics.json")) as f:
            m = json.load(f)
        figures[name] = m["steps_per_epoch"] * epochs * m["global_batch_size"] / m["train_seconds"]
    single = write_config(directory, config(epochs, num_samples=16000, strategy="default"), "single.yaml")
    subprocess.run([sys.executable, "-m", "tfgen", "train", single, "--run-dir", os.path.join(directory, "tp1")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(directory, "tp1", "metrics.json")) as f:
        m = json.load(f)
    figures["1 process"] = m["steps_per_epoch"] * epochs * m["global_batch_size"] / m["train_seconds"]
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5, help="SIGKILL trials")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 SIGKILL trials, 3 epochs")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs = 2, 3
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as directory:
        data = config(args.epochs)
        config_path = write_config(directory, data)
        reference = write_config(directory, {**data, "strategy": {"name": "default"}}, "reference.yaml")
        subprocess.run([sys.executable, "-m", "tfgen", "train", reference, "--run-dir",
                        os.path.join(directory, "reference")], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        reference_nll = held_out_nll(os.path.join(directory, "reference"))
        with open(os.path.join(directory, "reference", "metrics.json")) as f:
            steps_per_epoch = json.load(f)["steps_per_epoch"]
        rows = []
        faults = [("SIGKILL", trial_index % 2 == 0) for trial_index in range(args.trials)] + [("SIGTERM", True)]
        for index, (fault, worker_victim) in enumerate(faults):
            trial_dir = os.path.join(directory, f"trial{index}")
            os.makedirs(trial_dir)
            row = trial(trial_dir, config_path, steps_per_epoch, fault, 1 if worker_victim else 0,
                        rng.uniform(0, 1.0), after_epoch=1 + index % (args.epochs - 1))
            rows.append(row)
            print(f"trial {index}: {row}", flush=True)
        print(f"\nheld-out NLL uninterrupted: {reference_nll:.4f} nats; {steps_per_epoch} steps/epoch; "
              f"peer timeout {PEER_TIMEOUT} s\n")
        print("| trial | fault | victim | at | survivor exit (s) | restart -> first step (s) | steps lost "
              "| final NLL | vs uninterrupted |")
        print("|---|---|---|---|---|---|---|---|---|")
        for index, r in enumerate(rows):
            print(f"| {index} | {r['fault']} | {r['victim']} | {r['at']} | {r['exit_seconds']:.1f} | "
                  f"{r['first_step_seconds']:.1f} | {r['steps_lost']} | {r['nll']:.4f} | "
                  f"{100 * (r['nll'] - reference_nll) / abs(reference_nll):+.2f}% |")
        figures = throughput(directory, 3)
        print(f"\nthroughput, global batch 64: 1 process {figures['1 process']:.0f} examples/s, "
              f"2 local workers {figures['2 workers']:.0f} examples/s, ratio "
              f"{figures['2 workers'] / figures['1 process']:.2f}x")
        print(os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
