"""`tfgen train CONFIG --workers N`: a local N-worker cluster on loopback ports.

Each worker is its own process (`python -m tfgen train CONFIG ...` with the same
arguments) with its own `TF_CONFIG`, exactly what each machine of a real cluster runs,
so a config that trains here trains unchanged on a cluster (the config's strategy must
be `multi_worker`). Worker 0 is the chief. Output lines are prefixed `[worker i]`.

The first worker to fail stops the others (SIGTERM, so they save a step checkpoint; then
SIGKILL after the grace period), and the launcher exits with that worker's code; Ctrl-C
does the same and exits 130. Ports: all N are bound at once on 127.0.0.1 (so they
differ) and released just before the workers start; a worker that still finds its port
taken by another program fails at start ("address already in use"), and the launcher
then retries with new ports, up to `PORT_RETRIES` times.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

PORT_RETRIES = 3
_PORT_TAKEN = ("Address already in use", "Failed to add port")


def free_ports(n, host="127.0.0.1"):
    """`n` distinct ports free on `host` now (bound together, then released)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_configs(ports, host="127.0.0.1"):
    """The TF_CONFIG (a JSON string) of each worker of a cluster on `ports`."""
    cluster = {"worker": [f"{host}:{port}" for port in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(len(ports))]


def worker_command(train_args):
    """The command line of one worker: this Python, `-m tfgen train`, the same arguments."""
    return [sys.executable, "-m", "tfgen", "train", *train_args]


def _pump(index, stream, sink, lines):
    for line in stream:
        lines.append(line)
        sink.write(f"[worker {index}] {line}")
        sink.flush()


class LocalCluster:
    """N worker processes of one `tfgen train`, started and stopped together.

    Args:
      train_args: the `tfgen train` arguments every worker gets (CONFIG and options,
        without `--workers`).
      num_workers: N >= 1.
      grace_seconds: after a failure or Ctrl-C, how long the others get to save and
        exit after SIGTERM before they are killed.
      out: where the prefixed worker output goes.
      env: the workers' environment (default: this process's).
    """

    def __init__(self, train_args, num_workers, grace_seconds=30.0, out=None, env=None):
        self.train_args, self.num_workers, self.grace_seconds = list(train_args), num_workers, grace_seconds
        self.out = out or sys.stdout
        self.env = dict(os.environ if env is None else env)
        self.procs, self.lines = [], []

    def start(self, ports=None):
        ports = ports or free_ports(self.num_workers)
        self.procs, self.lines, threads = [], [], []
        for index, tf_config in enumerate(tf_configs(ports)):
            proc = subprocess.Popen(
                worker_command(self.train_args), env={**self.env, "TF_CONFIG": tf_config},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            )
            lines = []
            thread = threading.Thread(target=_pump, args=(index, proc.stdout, self.out, lines), daemon=True)
            thread.start()
            self.procs.append(proc)
            self.lines.append(lines)
            threads.append(thread)
        self._threads = threads
        return ports

    def stop(self, exclude=None):
        """SIGTERM to every running worker, SIGKILL to those still running after the grace."""
        running = [p for p in self.procs if p is not exclude and p.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def wait(self):
        """Waits for every worker; returns the exit code of the first that failed, else 0."""
        while True:
            codes = [p.poll() for p in self.procs]
            failed = next((p for p, code in zip(self.procs, codes) if code not in (None, 0)), None)
            if failed is not None:
                self.stop(exclude=failed)
                self._join()
                return failed.returncode
            if all(code == 0 for code in codes):
                self._join()
                return 0
            time.sleep(0.2)

    def _join(self):
        for thread in self._threads:
            thread.join(timeout=5)

    def port_was_taken(self):
        return any(marker in line for lines in self.lines for line in lines for marker in _PORT_TAKEN)

    def run(self):
        """Starts, waits, retries on a taken port; returns the exit code (130 on Ctrl-C)."""
        for attempt in range(PORT_RETRIES):
            self.start()
            try:
                code = self.wait()
            except KeyboardInterrupt:
                self.stop()
                return 130
            if code == 0 or not self.port_was_taken() or attempt == PORT_RETRIES - 1:
                return code
            self.out.write("tfgen train: a worker's port was taken meanwhile; restarting on new ports\n")
        return code
