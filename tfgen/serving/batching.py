"""Dynamic batching per model version and signature, with TF Serving's parameters.

Concurrent requests to one signature wait in a queue; a batch thread takes requests
from the front until `max_batch_size` rows are queued or the oldest request has waited
`batch_timeout_micros`, concatenates them along dimension 0, pads the batch up to the
next of `allowed_batch_sizes` (repeating the first row, as TF Serving does), runs the
signature once and hands each request its own rows. A request whose rows would push
the queue past `max_enqueued_batches` full batches is refused with UNAVAILABLE, as TF
Serving refuses it, so a client can back off instead of waiting without bound.

With `enable_large_batch_splitting`, as in TF Serving, `max_batch_size` is the largest
request accepted and `max_execution_batch_size` the largest batch run: a larger request
is split into pieces of at most that many rows, which are queued, batched (with other
requests' rows) and run like any request, and its answer is the pieces' outputs put
back together. A piece whose caller has gone (cancelled, or past its deadline) is
dropped before it runs, so an abandoned large request stops costing CPU at the next
piece.
"""

import asyncio
import concurrent.futures
import dataclasses
import logging
import math
import os
import threading
import time

import numpy as np

from tfgen.errors import UserError
from tfgen.serving.errors import (
    Code,
    ServingError,
    deadline_exceeded,
    internal,
    invalid_argument,
    unavailable,
)

log = logging.getLogger("tfgen.serving")

QUEUE_FULL_MESSAGE = "The batch scheduling queue to which this task was submitted is full"


class SchedulerClosed(ServingError):
    """The version was unloaded between lookup and submit; the caller looks up again."""

    def __init__(self):
        super().__init__(Code.UNAVAILABLE, "The batch scheduler is shutting down")


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's BatchingParameters (batching_parameters_file), with its defaults."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 1
    allowed_batch_sizes: tuple = ()
    pad_variable_length_inputs: bool = False
    thread_pool_name: str = "batch_threads"
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = None  # None: max_batch_size

    def __post_init__(self):
        if self.max_batch_size < 1:
            raise UserError("max_batch_size must be positive")
        if self.max_execution_batch_size is not None:
            if not self.enable_large_batch_splitting:
                raise UserError("max_execution_batch_size needs enable_large_batch_splitting")
            if not 1 <= self.max_execution_batch_size <= self.max_batch_size:
                raise UserError("max_execution_batch_size must be 1..max_batch_size")
        if self.batch_timeout_micros < 0:
            raise UserError("batch_timeout_micros must be non-negative")
        if self.max_enqueued_batches < 1:
            raise UserError("max_enqueued_batches must be positive")
        if self.num_batch_threads < 1:
            raise UserError("num_batch_threads must be positive")
        sizes = list(self.allowed_batch_sizes)
        if sizes:
            if any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[0] < 1:
                raise UserError("allowed_batch_sizes entries must be monotonically increasing")
            if sizes[-1] != self.execution_batch_size:
                which = ("max_execution_batch_size" if self.enable_large_batch_splitting
                         else "max_batch_size")
                raise UserError(
                    f"The last entry in allowed_batch_sizes must match {which}; last "
                    f"entry was {sizes[-1]}; expected {self.execution_batch_size}"
                )

    @property
    def execution_batch_size(self):
        """The most rows one run of the signature takes."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size

    def padded_size(self, rows):
        for size in self.allowed_batch_sizes:
            if size >= rows:
                return size
        return rows


@dataclasses.dataclass
class _Task:
    inputs: dict
    rows: int
    key: tuple
    future: object  # a concurrent.futures.Future, or an asyncio.Future of the caller's loop
    enqueued: float
    deadline: float = None

    def start(self):
        """False if the caller has gone (the future was cancelled); else it runs."""
        if not asyncio.isfuture(self.future):
            return self.future.set_running_or_notify_cancel()
        return not self.future.cancelled()  # settled on the loop, which skips a cancelled one


def _settle(outcomes):
    """On an event loop: completes its futures of one batch (`(future, result, error)`)."""
    for future, result, error in outcomes:
        if future.done():  # cancelled since the batch started
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _complete(outcomes):
    """Completes a batch's tasks: concurrent futures at once, asyncio futures with one
    callback per event loop for the whole batch. One wake-up of the loop per batch
    instead of one per request (what `asyncio.wrap_future` costs) answered 1.08-1.15x the
    requests/s at 64 clients (docs/benchmarks.md, "One loop wake-up per batch")."""
    by_loop = {}
    for task, result, error in outcomes:
        if asyncio.isfuture(task.future):
            by_loop.setdefault(task.future.get_loop(), []).append((task.future, result, error))
        elif error is not None:
            task.future.set_exception(error)
        else:
            task.future.set_result(result)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, items)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass


def _joined(pieces):
    """One Future for a split request: the pieces' outputs concatenated in order, or the
    first failure. Cancelling it cancels the pieces not yet running."""
    whole = concurrent.futures.Future()
    lock = threading.RLock()  # cancelling re-enters piece_done from its own callbacks

    def piece_done(piece):
        with lock:
            if whole.done():
                return
            if piece.cancelled():
                whole.cancel()
            elif piece.exception() is not None:
                whole.set_exception(piece.exception())
            elif all(p.done() for p in pieces):
                results = [p.result() for p in pieces]
                whole.set_result({a: np.concatenate([r[a] for r in results]) for a in results[0]})
                return
            else:
                return
            for p in pieces:  # the request failed or went away: drop what has not run
                p.cancel()

    def whole_done(_):
        if whole.cancelled():
            for p in pieces:
                p.cancel()

    whole.add_done_callback(whole_done)
    for p in pieces:
        p.add_done_callback(piece_done)
    return whole


class BatchScheduler:
    """The batch queue and threads of one signature of one loaded version."""

    def __init__(self, signature, params, model_name="", metrics=None):
        self.signature = signature
        self.params = params
        self.model_name = model_name
        self.metrics = metrics
        self._cond = threading.Condition()
        self._queue = []
        self._queued_rows = 0
        self._closed = False
        self._threads = [
            threading.Thread(
                target=self._work, name=f"{params.thread_pool_name}-{i}", daemon=True
            )
            for i in range(params.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs, deadline=None, loop=None):
        """Queue one request's checked inputs; returns a Future of alias -> array.

        With `loop` (the caller's event loop), a request run in one piece gets an
        asyncio.Future of that loop, completed there; otherwise (and for a split
        request) a concurrent.futures.Future."""
        rows = {alias: a.shape[0] for alias, a in inputs.items() if a.ndim >= 1}
        if len(rows) != len(inputs):
            raise invalid_argument("Batching Run() input tensors must have at least one dimension")
        if len(set(rows.values())) > 1:
            raise invalid_argument(
                "Batching Run() input tensors must have equal 0th-dimension size"
            )
        n = next(iter(rows.values()))
        if n > self.params.max_batch_size:
            raise invalid_argument(
                f"Task size {n} is larger than maximum input batch size "
                f"{self.params.max_batch_size}"
            )
        key = tuple(sorted((a, v.shape[1:], v.dtype.str) for a, v in inputs.items()))
        size = self.params.execution_batch_size
        now = time.monotonic()
        if n <= size and loop is not None:
            tasks = [_Task(inputs, n, key, loop.create_future(), now, deadline)]
        else:
            tasks = [
                _Task({a: v[start:start + size] for a, v in inputs.items()}, min(size, n - start),
                      key, concurrent.futures.Future(), now, deadline)
                for start in range(0, n, size)
            ]
        with self._cond:
            if self._closed:
                raise SchedulerClosed()
            batches = math.ceil((self._queued_rows + n) / size)
            if batches > self.params.max_enqueued_batches:
                raise unavailable(QUEUE_FULL_MESSAGE)
            self._queue.extend(tasks)
            self._queued_rows += n
            self._cond.notify(len(tasks))
        if len(tasks) == 1:
            return tasks[0].future
        return _joined([t.future for t in tasks])

    def close(self):
        """Stop taking requests, run what is queued, then end the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=60)

    def _take_batch(self):
        """Under the lock: wait for a full batch or the timeout; pop its tasks."""
        timeout = self.params.batch_timeout_micros / 1e6
        while True:
            if self._queue:
                waited = time.monotonic() - self._queue[0].enqueued
                if (
                    self._queued_rows >= self.params.execution_batch_size
                    or waited >= timeout
                    or self._closed
                ):
                    break
                self._cond.wait(timeout - waited)
            elif self._closed:
                return None
            else:
                self._cond.wait()
        first = self._queue[0]
        batch, rest, rows = [], [], 0
        for task in self._queue:
            if task.key == first.key and rows + task.rows <= self.params.execution_batch_size:
                batch.append(task)
                rows += task.rows
            else:
                rest.append(task)
        self._queue = rest
        self._queued_rows -= rows
        if rest:
            self._cond.notify()
        return batch

    def _work(self):
        while True:
            with self._cond:
                batch = self._take_batch()
            if batch is None:
                return
            self._run(batch)

    def _run(self, batch):
        now = time.monotonic()
        live, late = [], []
        for task in batch:
            if not task.start():
                continue  # the client went away
            if task.deadline is not None and now > task.deadline:
                late.append((task, None, deadline_exceeded()))
                continue
            live.append(task)
            if self.metrics:
                self.metrics.queuing_latency(self.params.thread_pool_name, now - task.enqueued)
        _complete(late)
        if live:
            _complete(self._outcomes(live))

    def _outcomes(self, live):
        """Runs the live tasks as one batch: `(task, outputs, error)` for each."""
        rows = sum(t.rows for t in live)
        padded = self.params.padded_size(rows)
        try:
            inputs = {}
            for alias in live[0].inputs:
                parts = [t.inputs[alias] for t in live]
                if padded > rows:
                    first = parts[0][:1]
                    parts.append(np.repeat(first, padded - rows, axis=0))
                inputs[alias] = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
            if self.metrics:
                self.metrics.batch(self.model_name, self.signature.name, rows, padded)
            began = time.monotonic()
            outputs = self.signature.run(inputs)
            if self.metrics:
                self.metrics.runtime(self.model_name, "Predict", time.monotonic() - began)
            for alias, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != padded:
                    raise internal(
                        f"Batched output tensor '{alias}' has 0th dimension "
                        f"{value.shape[0] if value.ndim else 'none'}; expected {padded}: "
                        "every signature output must be batched on dimension 0"
                    )
            outcomes, start = [], 0
            for task in live:
                end = start + task.rows
                outcomes.append((task, {a: v[start:end] for a, v in outputs.items()}, None))
                start = end
            return outcomes
        except ServingError as e:
            return [(task, None, e) for task in live]
        except Exception as e:  # never leave a request waiting
            log.exception("batch failed")
            return [(task, None, internal(f"batch failed: {e}")) for task in live]
