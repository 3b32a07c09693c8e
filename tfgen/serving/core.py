"""What gRPC and REST share: resolve a model spec, check inputs, batch or run.

`ServingCore.predict` does everything that can fail fast in the caller's thread (lookup,
signature, output filter, input checks) and returns a future for the run itself, which
happens on a batch thread or the runtime thread pool. The asyncio front ends await
`PredictCall.outputs()`, so no thread waits on a queue: a batched request given the
caller's `loop` gets an asyncio.Future that the batch thread completes with one loop
callback for its whole batch; the rest get a concurrent.futures.Future.
"""

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import time

from tfgen.serving.batching import BatchScheduler, SchedulerClosed
from tfgen.serving.errors import deadline_exceeded, unavailable
from tfgen.serving.model_manager import ServableClosed
from tfgen.serving.signatures import DEFAULT_SIGNATURE


@dataclasses.dataclass
class PredictCall:
    """A checked request on its way to running: await `future` for alias -> array."""

    servable: object
    signature: object
    output_names: list
    future: object  # an asyncio.Future of the caller's loop, or a concurrent.futures.Future
    row_format: bool = False  # REST: answer `predictions` (rows) or `outputs` (columns)

    @property
    def signature_name(self):
        return self.signature.name

    def outputs(self):
        """An awaitable of alias -> array, on the event loop."""
        return self.future if asyncio.isfuture(self.future) else asyncio.wrap_future(self.future)


class ServingCore:
    def __init__(self, manager, batching=None, metrics=None, runtime_threads=4):
        self.manager = manager
        self.batching = batching
        self.metrics = metrics
        self.limits = manager.limits
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=runtime_threads, thread_name_prefix="runtime"
        )
        self.refusing = False  # shutting down: new requests are UNAVAILABLE
        self.in_flight = 0  # requests between `request()` entry and exit (event loop only)

    @contextlib.contextmanager
    def request(self):
        """Around each request a front end handles: counts it, or refuses it with
        UNAVAILABLE (which clients retry elsewhere) once the server is shutting down."""
        if self.refusing:
            raise unavailable("The server is shutting down; retry on another replica")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def metric_label(self, model_name):
        """Configured names only: a client cannot grow the metrics with made-up names."""
        return model_name if model_name in self.manager.model_names() else "<unknown>"

    def servable(self, model_spec):
        """The loaded version a ModelSpec proto asks for."""
        version = model_spec.version.value if model_spec.HasField("version") else None
        return self.manager.servable(model_spec.name, version, model_spec.version_label or None)

    def predict(self, model_spec, output_filter=(), request_inputs=None, arrays=None,
                deadline=None, loop=None):
        """Check a request and start it. Inputs are TensorProtos or decoded arrays;
        `loop`: the event loop that will await the result (see `PredictCall.outputs`)."""
        try:
            return self._predict(model_spec, output_filter, request_inputs, arrays, deadline, loop)
        except (SchedulerClosed, ServableClosed):
            # The version went away between lookup and submit: its successor serves it.
            return self._predict(model_spec, output_filter, request_inputs, arrays, deadline, loop)

    def _predict(self, model_spec, output_filter, request_inputs, arrays, deadline, loop):
        servable = self.servable(model_spec)
        signature = servable.signature(model_spec.signature_name or DEFAULT_SIGNATURE)
        output_names = signature.resolve_outputs(list(output_filter))
        if request_inputs is not None:
            inputs = signature.decode_request_inputs(request_inputs, self.limits)
        else:
            inputs = signature.check_arrays(arrays, self.limits)
        future = self._dispatch(servable, signature, inputs, deadline, loop)
        return PredictCall(servable, signature, output_names, future)

    def _dispatch(self, servable, signature, inputs, deadline, loop=None):
        if self.batching is not None and signature.batched:
            return self._scheduler(servable, signature).submit(inputs, deadline, loop)
        return self.executor.submit(self._run, servable, signature, inputs, deadline)

    def _run(self, servable, signature, inputs, deadline):
        if deadline is not None and time.monotonic() > deadline:
            raise deadline_exceeded()
        start = time.monotonic()
        outputs = signature.run(inputs)
        if self.metrics:
            self.metrics.runtime(servable.name, "Predict", time.monotonic() - start)
        return outputs

    def _scheduler(self, servable, signature):
        return servable.extra(
            ("batcher", signature.name),
            lambda: BatchScheduler(signature, self.batching, servable.name, self.metrics),
        )

    def close(self):
        self.executor.shutdown(wait=True)
