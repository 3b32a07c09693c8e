"""Prometheus metrics under TF Serving's names, for `/monitoring/prometheus/metrics`.

TF Serving exports its counters under their exact names (`:tensorflow:serving:
request_count`, no `_total` suffix), which prometheus-client's `Counter` cannot do, so
this module keeps the values itself and renders the text format with
prometheus-client's number formatting. Each server owns one `ServingMetrics`, so
several servers in one process (tests) do not share counts.

Names, as TF Serving's:
- `:tensorflow:serving:request_count{model_name,status}`
- `:tensorflow:serving:request_latency{model_name,API,entrypoint}` (microseconds)
- `:tensorflow:serving:runtime_latency{model_name,API,runtime}` (microseconds)
- `:tensorflow:serving:batching_session:queuing_latency{thread_pool_name}` (microseconds)
- `:tensorflow:serving:batching_session:processed_batch_size{model_name,signature_name}`
- `:tensorflow:serving:batching_session:padding_size{model_name,signature_name}`
- `:tensorflow:cc:saved_model:load_attempt_count{model_path,status}`
"""

import bisect
import threading

from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Exponential buckets as TF Serving's latency histograms (microseconds).
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))
BATCH_SIZE_BUCKETS = tuple(2**i for i in range(15))


def _escape(value):
    return str(value).replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(names, values, extra=()):
    pairs = list(zip(names, values)) + list(extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class _Counter:
    def __init__(self, name, doc, labels):
        self.name, self.doc, self.labels = name, doc, labels
        self.values = {}

    def inc(self, *label_values, amount=1):
        self.values[label_values] = self.values.get(label_values, 0) + amount

    def render(self):
        lines = [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} counter"]
        for key, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_labels(self.labels, key)} {floatToGoString(value)}")
        return lines


class _Histogram:
    def __init__(self, name, doc, labels, buckets):
        self.name, self.doc, self.labels, self.buckets = name, doc, labels, buckets
        self.values = {}  # labels -> [bucket counts..., sum, count]

    def observe(self, value, *label_values):
        entry = self.values.setdefault(label_values, [0] * (len(self.buckets) + 2))
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            entry[index] += 1
        entry[-2] += value
        entry[-1] += 1

    def render(self):
        lines = [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} histogram"]
        for key, entry in sorted(self.values.items()):
            cumulative = 0
            for bound, n in zip(self.buckets, entry):
                cumulative += n
                le = (("le", floatToGoString(bound)),)
                lines.append(f"{self.name}_bucket{_labels(self.labels, key, le)} {cumulative}")
            inf = (("le", "+Inf"),)
            lines.append(f"{self.name}_bucket{_labels(self.labels, key, inf)} {entry[-1]}")
            lines.append(f"{self.name}_sum{_labels(self.labels, key)} {floatToGoString(entry[-2])}")
            lines.append(f"{self.name}_count{_labels(self.labels, key)} {entry[-1]}")
        return lines


class ServingMetrics:
    """The server's metrics; every method is thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self.request_count = _Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            ("model_name", "status"),
        )
        self.request_latency = _Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ("model_name", "API", "entrypoint"),
            LATENCY_BUCKETS_US,
        )
        self.runtime_latency = _Histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ("model_name", "API", "runtime"),
            LATENCY_BUCKETS_US,
        )
        self.queuing = _Histogram(
            ":tensorflow:serving:batching_session:queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ("thread_pool_name",),
            LATENCY_BUCKETS_US,
        )
        self.batch_size = _Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Distribution of processed batch size (rows after padding)",
            ("model_name", "signature_name"),
            BATCH_SIZE_BUCKETS,
        )
        self.padding = _Histogram(
            ":tensorflow:serving:batching_session:padding_size",
            "Distribution of padding rows added to reach an allowed batch size",
            ("model_name", "signature_name"),
            BATCH_SIZE_BUCKETS,
        )
        self.load_attempts = _Counter(
            ":tensorflow:cc:saved_model:load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            ("model_path", "status"),
        )
        self._all = [
            self.request_count, self.request_latency, self.runtime_latency,
            self.queuing, self.batch_size, self.padding, self.load_attempts,
        ]

    def request(self, model_name, api, entrypoint, status, seconds):
        with self._lock:
            self.request_count.inc(model_name, status)
            self.request_latency.observe(seconds * 1e6, model_name, api, entrypoint)

    def runtime(self, model_name, api, seconds):
        with self._lock:
            self.runtime_latency.observe(seconds * 1e6, model_name, api, "TF2")

    def queuing_latency(self, thread_pool_name, seconds):
        with self._lock:
            self.queuing.observe(seconds * 1e6, thread_pool_name)

    def batch(self, model_name, signature_name, rows, padded):
        with self._lock:
            self.batch_size.observe(padded, model_name, signature_name)
            self.padding.observe(padded - rows, model_name, signature_name)

    def load_attempt(self, model_path, ok):
        with self._lock:
            self.load_attempts.inc(model_path, "success" if ok else "fail")

    def render(self):
        with self._lock:
            lines = []
            for metric in self._all:
                lines.extend(metric.render())
        return "\n".join(lines) + "\n"
