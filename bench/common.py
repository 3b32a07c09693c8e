"""Helpers shared by the bench scripts: machine load, interleaved rounds, tables.

The machine is shared and noisy (absolute times drift 3x between runs), so every bench
script times the variants it compares in one process, interleaved round by round
(A B A B ...), and reports medians and their ratio side by side. Only the ratios from
one run are meant to be compared.
"""

import os
import platform
import statistics
import time


def loadavg():
    """The 1/5/15-minute load averages as a string ("?" where /proc is missing)."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_line():
    """One line describing the machine and its load, printed before and after a run."""
    from tfgen.backend import tf

    return (f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  cpus={os.cpu_count()}  "
            f"loadavg={loadavg()}  python={platform.python_version()}  tensorflow={tf.__version__}")


def interleave(variants, rounds):
    """Runs `variants` (name -> callable returning one measurement) round-robin.

    Returns name -> list of measurements, `rounds` each, taken A B A B ... so drifting
    machine load hits every variant alike. A variant that raises is dropped from the
    remaining rounds; its entry then holds the exception (see `short_reason`).
    """
    results = {name: [] for name in variants}
    live = dict(variants)
    for _ in range(rounds):
        for name, run in list(live.items()):
            try:
                results[name].append(run())
            except Exception as error:  # noqa: BLE001  (reported in the table, never hidden)
                results[name] = error
                del live[name]
    return results


def timed_fit(model, dataset, steps):
    """(steps/s, CPU ms/step) of one `model.fit(dataset, steps_per_epoch=steps)` call, from
    a clock taken after every call of the train function (every step, or every N with
    `compile(steps_per_execution=N)`): steps/s is 1 / the median time a step took
    (other processes' bursts on the shared cores hit a few calls hard and would decide a
    mean), CPU ms/step is `time.process_time` (every thread of this process) from the
    first call's end to the last's over the steps between. The call's start-up and
    teardown are left out: filling a shuffle buffer and, at teardown, waiting for
    tf.data's autotuning thread, which wakes 10, 20, 40, ... ms apart, so a whole call
    ends only at 310, 630, 1270 ms, ... whatever its steps took."""
    from tfgen.backend import keras

    class StepClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.steps, self.times, self.cpu = [], [], []

        def on_train_batch_end(self, batch, logs=None):  # `batch`: the call's last step
            self.steps.append(batch)
            self.times.append(time.perf_counter())
            self.cpu.append(time.process_time())

    clock = StepClock()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    if len(clock.steps) < 3:
        raise ValueError(f"timed_fit needs at least 3 train-function calls (two timed ones); {steps} steps "
                         f"made {len(clock.steps)}: give more steps")
    step_times = [(t1 - t0) / (s1 - s0) for s0, s1, t0, t1 in
                  zip(clock.steps, clock.steps[1:], clock.times, clock.times[1:])]
    cpu = (clock.cpu[-1] - clock.cpu[0]) / (clock.steps[-1] - clock.steps[0])
    return 1.0 / median(step_times), cpu * 1e3


def median(values):
    return statistics.median(values) if values else float("nan")


def short_reason(error, width=70):
    """A one-line reason for a failure table cell: the exception's first meaningful line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # TF errors often start with the op path; the line naming the problem is more useful.
    for line in lines:
        lowered = line.lower()
        if any(key in lowered for key in ("not supported", "unsupported", "unimplemented", "cannot", "error")):
            text = line
            break
    else:
        text = lines[0] if lines else ""
    text = f"{type(error).__name__}: {text}"
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(headers, rows, align=None):
    """A Markdown table (readable as plain text too). `align` is "l"/"r" per column."""
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        padded = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def logistic_regression_accuracy(train, test, levels):
    """Test accuracy of a logistic regression on the pixels scaled to [0, 1], fitted on
    the train split: the reference the Bayes classifiers are measured against."""
    from sklearn.linear_model import LogisticRegression

    def flat(x):
        return x.reshape(len(x), -1) / (levels - 1)

    fitted = LogisticRegression(max_iter=5000).fit(flat(train.x), train.y)
    return float((fitted.predict(flat(test.x)) == test.y).mean())
