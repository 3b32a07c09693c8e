"""Reading examples to score, in batches, one `Row` per input row: never a dropped row.

Formats (by extension):

- `.npy`: an array `[N, *event]` (or `[N, D]` with D the event size), memory-mapped.
- `.npz`: the array named `x`, or the only array; a conditional model's classes from
  the array named by `condition_column` (default `condition`).
- `.csv`: one example per line, its values flattened (row-major) to the event size; a
  first line that is not all numbers is a header. `condition_column` (a header name or a
  0-based column number) holds the class and is not part of the example.

`condition_file` (`.npy` `[N]`, or text with one integer per line) gives the classes of
any format. A row that cannot be read (wrong number of values, not a number, missing or
non-integer condition, NaN/Inf) comes out with its error instead of an example.
"""

import csv
import dataclasses
import itertools
import math
import os
from typing import Optional

import numpy as np

from tfgen.errors import MissingPath, UserError


@dataclasses.dataclass
class Row:
    index: int
    x: Optional[np.ndarray] = None  # float32 [*event]
    condition: Optional[int] = None
    error: Optional[str] = None


def _check(row, event_shape, conditional):
    if row.error is None and not np.all(np.isfinite(row.x)):
        row.error = "non-finite input (NaN or Inf)"
    if row.error is None and conditional and row.condition is None:
        row.error = "no condition for this row"
    return row


def _example(values, event_shape, index):
    size = math.prod(event_shape)
    values = np.asarray(values, dtype=np.float32)
    if values.shape == tuple(event_shape):
        return Row(index, values)
    if values.size != size:
        return Row(index, error=f"expected {size} values (event shape {list(event_shape)}), "
                                f"got {values.size} (shape {list(values.shape)})")
    return Row(index, values.reshape(event_shape))


def _condition_value(value):
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None, f"condition {value!r} is not an integer"
    if not math.isfinite(f) or f != int(f) or not -2**31 <= f < 2**31:
        return None, f"condition {value!r} is not an integer"
    return int(f), None


def _array_rows(array, event_shape, start=0):
    for i in range(array.shape[0]):
        yield _example(array[i], event_shape, start + i)


def _npy_rows(path, event_shape, chunk=4096):
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.ndim == 0:
        raise UserError(f"{path}: a scalar, not an array of examples")
    for start in range(0, array.shape[0], chunk):
        yield from _array_rows(np.asarray(array[start:start + chunk]), event_shape, start)


def _npz(path, condition_column):
    archive = np.load(path, allow_pickle=False)
    keys = list(archive.keys())
    if "x" in keys:
        x_key = "x"
    else:
        others = [k for k in keys if k != (condition_column or "condition")]
        if len(others) != 1:
            raise UserError(f"{path}: name the examples `x` (arrays: {keys})")
        x_key = others[0]
    return archive, x_key


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _csv_rows(path, event_shape, condition_column):
    with open(path, newline="") as f:
        lines = csv.reader(f)
        first = next(lines, None)
        if first is None:
            return
        header = None
        if not all(_is_number(v) for v in first if v.strip()):
            header = [h.strip() for h in first]
            first = None
        column = None
        if condition_column is not None:
            if header is not None and condition_column in header:
                column = header.index(condition_column)
            elif str(condition_column).isdigit():
                column = int(condition_column)
            else:
                raise UserError(f"{path}: no column {condition_column!r}"
                                 + (f" (header: {header})" if header else " (no header line)"))
        rows = itertools.chain([first] if first is not None else [], lines)
        for index, fields in enumerate(rows):
            condition = None
            if column is not None:
                if column >= len(fields):
                    yield Row(index, error=f"no column {column} in this row")
                    continue
                condition, error = _condition_value(fields[column])
                if error:
                    yield Row(index, error=error)
                    continue
                fields = fields[:column] + fields[column + 1:]
            try:
                values = [float(v) for v in fields]
            except ValueError as e:
                yield Row(index, error=f"not a number: {e}")
                continue
            row = _example(values, event_shape, index)
            row.condition = condition
            yield row


def _conditions_from_file(path):
    """Yields (condition, error) per line of a condition file."""
    if path.endswith(".npy"):
        values = np.load(path, mmap_mode="r", allow_pickle=False).reshape(-1)
        for v in values:
            yield _condition_value(v.item())
        return
    with open(path) as f:
        for i, line in enumerate(f):
            text = line.strip().split(",")[0]
            if i == 0 and not _is_number(text):
                continue  # header
            yield _condition_value(text)


def read_rows(path, event_shape, conditional=False, condition_column=None, condition_file=None):
    """Yields one `Row` per example of `path`, in order (see the module doc)."""
    if not os.path.isfile(path):
        raise MissingPath(f"no input file {path}")
    if condition_file and condition_column:
        raise UserError("use either --condition-column or --condition-file")
    if condition_file and not os.path.isfile(condition_file):
        raise MissingPath(f"no condition file {condition_file}")
    if (condition_file or condition_column) and not conditional:
        raise UserError("this model is unconditional: drop the condition")
    ext = os.path.splitext(path)[1].lower()
    conditions = None
    if ext == ".npy":
        if condition_column:
            raise UserError("a .npy input has no columns: use --condition-file")
        rows = _npy_rows(path, event_shape)
    elif ext == ".npz":
        archive, x_key = _npz(path, condition_column)
        rows = _array_rows(archive[x_key], event_shape)
        key = condition_column or "condition"
        if conditional and not condition_file:
            if key not in archive:
                raise UserError(f"{path}: the model is conditional and there is no array {key!r}"
                                 " (name it with --condition-column or use --condition-file)")
            conditions = (_condition_value(v.item()) for v in archive[key].reshape(-1))
    elif ext == ".csv":
        rows = _csv_rows(path, event_shape, condition_column)
    else:
        raise UserError(f"{path}: unknown input format {ext!r}; use .npy, .npz or .csv")
    if condition_file:
        conditions = _conditions_from_file(condition_file)
    if conditional and conditions is None and condition_column is None:
        raise UserError("the model is conditional: give the classes with --condition-column "
                         "or --condition-file")
    for row in rows:
        if conditions is not None:
            condition, error = next(conditions, (None, "no condition for this row"))
            if row.error is None:
                row.condition, row.error = condition, error
        yield _check(row, event_shape, conditional)


def batches(rows, batch_size):
    """Lists of up to `batch_size` rows."""
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    iterator = iter(rows)
    while True:
        batch = list(itertools.islice(iterator, batch_size))
        if not batch:
            return
        yield batch
