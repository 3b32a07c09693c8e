"""Prometheus metrics under TF Serving's names, for `/monitoring/prometheus/metrics`.

The values live in prometheus_client's `Counter` and `Histogram`, in a registry that
each server owns (so several servers in one process, as in tests, do not share counts),
and prometheus_client writes the page. Names, as TF Serving's:

- `:tensorflow:serving:request_count{model_name,status}`
- `:tensorflow:serving:request_latency{model_name,API,entrypoint}` (microseconds)
- `:tensorflow:serving:runtime_latency{model_name,API,runtime}` (microseconds)
- `:tensorflow:serving:batching_session:queuing_latency{thread_pool_name}` (microseconds)
- `:tensorflow:serving:batching_session:processed_batch_size{model_name,signature_name}`
- `:tensorflow:serving:batching_session:padding_size{model_name,signature_name}`
- `:tensorflow:cc:saved_model:load_attempt_count{model_path,status}`

TF Serving's counters have no `_total` suffix (`:tensorflow:serving:request_count{...}
3`). prometheus_client names a counter's samples `<name>_total`, and its Prometheus text
encoder also renames the counter's `# TYPE` line to `<name>_total`. So `_TFServingNames`
gives each counter's samples the counter's own name and drops the `_created` series
TF Serving does not have, and the OpenMetrics encoder, which writes names as given,
writes the page. For these metrics (no units, exemplars or timestamps) its output is
the Prometheus text format plus a closing `# EOF` comment, so the page is served as
that text format, as TF Serving serves it. Label names come sorted, as prometheus_client
writes them; their order means nothing to Prometheus.
"""

from prometheus_client import CollectorRegistry, Counter, Histogram, Metric
from prometheus_client.openmetrics import exposition as openmetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Exponential buckets as TF Serving's latency histograms (microseconds).
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))
BATCH_SIZE_BUCKETS = tuple(2**i for i in range(15))


class _TFServingNames:
    """A collector re-yielding `registry`'s metrics under TF Serving's sample names."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        for family in self.registry.collect():
            metric = Metric(family.name, family.documentation, family.type)
            for sample in family.samples:
                if sample.name == family.name + "_created":
                    continue
                name = family.name if sample.name == family.name + "_total" else sample.name
                metric.add_sample(name, sample.labels, sample.value)
            yield metric


class ServingMetrics:
    """The server's metrics; every method is thread-safe (prometheus_client's are)."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=False)

        def histogram(name, doc, labels, buckets):
            return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

        self.request_count = Counter(
            ":tensorflow:serving:request_count", "The total number of requests.",
            ("model_name", "status"), registry=self.registry,
        )
        self.request_latency = histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ("model_name", "API", "entrypoint"), LATENCY_BUCKETS_US,
        )
        self.runtime_latency = histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ("model_name", "API", "runtime"), LATENCY_BUCKETS_US,
        )
        self.queuing = histogram(
            ":tensorflow:serving:batching_session:queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ("thread_pool_name",), LATENCY_BUCKETS_US,
        )
        self.batch_size = histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Distribution of processed batch size (rows after padding)",
            ("model_name", "signature_name"), BATCH_SIZE_BUCKETS,
        )
        self.padding = histogram(
            ":tensorflow:serving:batching_session:padding_size",
            "Distribution of padding rows added to reach an allowed batch size",
            ("model_name", "signature_name"), BATCH_SIZE_BUCKETS,
        )
        self.load_attempts = Counter(
            ":tensorflow:cc:saved_model:load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            ("model_path", "status"), registry=self.registry,
        )
        self._page = _TFServingNames(self.registry)

    def request(self, model_name, api, entrypoint, status, seconds):
        self.request_count.labels(model_name, status).inc()
        self.request_latency.labels(model_name, api, entrypoint).observe(seconds * 1e6)

    def runtime(self, model_name, api, seconds):
        self.runtime_latency.labels(model_name, api, "TF2").observe(seconds * 1e6)

    def queuing_latency(self, thread_pool_name, seconds):
        self.queuing.labels(thread_pool_name).observe(seconds * 1e6)

    def batch(self, model_name, signature_name, rows, padded):
        self.batch_size.labels(model_name, signature_name).observe(padded)
        self.padding.labels(model_name, signature_name).observe(padded - rows)

    def load_attempt(self, model_path, ok):
        self.load_attempts.labels(model_path, "success" if ok else "fail").inc()

    def render(self):
        """The exposition page (bytes)."""
        # ALLOWUTF8: with the default escaping this encoder rewrites the ':' of sample
        # names (as if they were label names); the names here are all legacy-valid,
        # so nothing is quoted either.
        return openmetrics.generate_latest(self._page, escaping=openmetrics.ALLOWUTF8)
