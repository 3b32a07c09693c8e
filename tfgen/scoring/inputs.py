"""Reading examples to score as a stream, one `Row` per input row: never a dropped row.

Formats (by extension, or a folder):

- `.npy`: an array `[N, *event]` (or `[N, D]` with D the event size), read chunk by
  chunk from the file (no memory map, so resident memory stays one chunk whatever N).
- `.npz`: the array named `x`, or the only array, read the same way from the archive; a
  conditional model's classes from the array named by `condition_column` (default
  `condition`).
- `.csv`: one example per line, its values flattened (row-major) to the event size; a
  first line that is not all numbers is a header. `condition_column` (a header name or a
  0-based column number) holds the class and `key_column` the row's key; neither is part
  of the example.
- `.parquet`: either one list column `x` holding the flattened example, or every
  numeric column but the condition and key columns, in column order; read one record
  batch at a time.
- `.tfrecord` (`.tfrecords`, `.tfr`): `tf.train.Example`s with the flattened example
  under feature `x` (float_list or int64_list), the class under `condition_column`
  (default `condition`, int64) and an optional bytes key under `key_column`.
- a folder of PNG/JPEG images, or of WAV files: one row per file (sorted, key = the
  path relative to the folder); with one subfolder per class, the class is the
  subfolder's position among the sorted subfolders (as the `image_folder` dataset
  labels them). Images are converted to the model's channels (1: greyscale) and scaled
  from 0..255 to the model's levels (or to [low, high], default [0, 1]); WAVs are
  resampled to the model's rate and mu-law coded to its levels (`tfgen.data.audio`).

`condition_file` (`.npy` `[N]`, or text with one integer per line) gives the classes of
any format. A row that cannot be read (wrong shape, not a number, an undecodable file or
record, a missing or non-integer condition, NaN/Inf) comes out with its error instead of
an example.

Paths may also be URLs of any file system Apache Beam knows (`gs://`, `s3://`,
`hdfs://`, with the matching Beam extra installed): `tfgen score --runner` reads them on
the workers through `apache_beam.io.filesystems` (TFRecords through TensorFlow's gfile,
which reads `gs://` itself). Every other command takes local paths only.
"""

import csv
import dataclasses
import itertools
import math
import io
import os
import posixpath
import zipfile
from typing import Optional

import numpy as np

from tfgen.data.audio import WAV_SUFFIXES
from tfgen.data.loaders import IMAGE_SUFFIXES
from tfgen.errors import MissingPath, UserError

TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfr")
FILE_FORMATS = (".npy", ".npz", ".csv", ".parquet") + TFRECORD_SUFFIXES
#: Rows read from a file at once (a chunk of an array, a Parquet record batch), and the
#: most bytes an array chunk may take.
CHUNK_ROWS = 4096
CHUNK_BYTES = 4 << 20


@dataclasses.dataclass
class Row:
    index: int
    x: Optional[np.ndarray] = None  # float32 [*event]
    condition: Optional[int] = None
    error: Optional[str] = None
    key: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What decoding images and audio into a model's raw form needs (tfgen.json's
    data spec; a served model's `describe`). Shapes may hold None for any length."""

    event_shape: tuple
    levels: int = 0
    sample_rate: int = 0
    low: Optional[float] = None
    high: Optional[float] = None


def _check(row, conditional):
    if row.error is None and not np.all(np.isfinite(row.x)):
        row.error = "non-finite input (NaN or Inf)"
    if row.error is None and conditional and row.condition is None:
        row.error = "no condition for this row"
    return row


def _fits(shape, event_shape):
    return len(shape) == len(event_shape) and all(
        d is None or d == s for s, d in zip(shape, event_shape))


def _example(values, event_shape, index, key=None):
    """A row from the values of one example: its shape, or flattened to the event size.
    A None dim (audio of any length) takes what the values give."""
    values = np.asarray(values, dtype=np.float32)
    if _fits(values.shape, event_shape):
        return Row(index, values, key=key)
    fixed = math.prod(d for d in event_shape if d is not None)
    if None in event_shape:
        if values.size % fixed == 0 and values.size:
            shape = [values.size // fixed if d is None else d for d in event_shape]
            return Row(index, values.reshape(shape), key=key)
        return Row(index, error=f"expected a multiple of {fixed} values (event shape "
                                f"{_shape_text(event_shape)}), got {values.size}", key=key)
    if values.size != fixed:
        return Row(index, error=f"expected {fixed} values (event shape {_shape_text(event_shape)}), "
                                f"got {values.size} (shape {list(values.shape)})", key=key)
    return Row(index, values.reshape(event_shape), key=key)


def _shape_text(shape):
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _condition_value(value):
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None, f"condition {value!r} is not an integer"
    if not math.isfinite(f) or f != int(f) or not -2**31 <= f < 2**31:
        return None, f"condition {value!r} is not an integer"
    return int(f), None


# === Paths: local files, or URLs of Beam's file systems ===

def is_url(path):
    """True for `scheme://...` paths (read through Beam's file systems)."""
    return "://" in os.fspath(path)


def filesystems(path):
    """Beam's `FileSystems`, once it is known to have a file system for URL `path` (else a
    UserError naming the Beam extra to install)."""
    try:
        from apache_beam.io.filesystems import FileSystems
    except ImportError:
        raise UserError(f"{path}: reading URLs needs Apache Beam: pip install 'tfgen[beam]'") from None
    try:
        FileSystems.get_filesystem(path)
    except ValueError as e:
        # Beam's message names the extra to install (gs:// needs apache-beam[gcp]).
        raise UserError(f"{path}: {str(e).splitlines()[0]}") from None
    return FileSystems


def open_input(path, text=False):
    """A readable, seekable file object for `path` (binary, or text with universal newlines off)."""
    if not is_url(path):
        return open(path, "r", newline="") if text else open(path, "rb")
    from apache_beam.io.filesystem import CompressionTypes

    try:
        f = filesystems(path).open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except (OSError, IOError) as e:
        raise MissingPath(f"cannot open {path} ({str(e).splitlines()[0]})") from None
    return io.TextIOWrapper(f, newline="") if text else f


def _url_exists(path):
    return filesystems(path).exists(path)


def _folder_entries(path):
    """The names, relative to folder `path` (posix), of its files and of the files one
    folder down."""
    if is_url(path):
        base = path.rstrip("/") + "/"
        matched = filesystems(path).match([base + "*", base + "*/*"])
        return [m.path[len(base):] for result in matched for m in result.metadata_list]
    names = []
    for entry in os.scandir(path):
        if entry.is_file():
            names.append(entry.name)
        elif entry.is_dir():
            names.extend(f"{entry.name}/{e.name}" for e in os.scandir(entry.path) if e.is_file())
    return names


def _join(folder, name):
    return folder.rstrip("/") + "/" + name if is_url(folder) else os.path.join(folder, name)


# === Arrays, read chunk by chunk ===

class _ArrayFile:
    """A .npy array inside an open binary file: its shape, and rows read on demand."""

    def __init__(self, f, name):
        try:
            version = np.lib.format.read_magic(f)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = header(f)
        except ValueError as e:
            raise UserError(f"{name}: not a readable .npy array ({e})") from None
        if dtype.hasobject:
            raise UserError(f"{name}: holds object arrays (e.g. strings); expected a numeric array")
        if fortran and len(shape) > 1:
            raise UserError(f"{name}: a Fortran-ordered array; save it C-ordered")
        if not shape:
            raise UserError(f"{name}: a scalar, not an array of examples")
        self.f, self.shape, self.dtype = f, shape, dtype
        self.row_bytes = dtype.itemsize * math.prod(shape[1:])

    def chunks(self, start=0):
        """Yields `(first_index, array)` chunks of up to CHUNK_ROWS rows (CHUNK_BYTES) from
        row `start`."""
        self.f.seek(self.row_bytes * start, os.SEEK_CUR)
        rows = max(1, min(CHUNK_ROWS, CHUNK_BYTES // max(self.row_bytes, 1)))
        for first in range(start, self.shape[0], rows):
            count = min(rows, self.shape[0] - first)
            data = self.f.read(count * self.row_bytes)
            yield first, np.frombuffer(data, self.dtype).reshape((count,) + tuple(self.shape[1:]))


def _array_rows(path, member, event_shape, skip):
    with _open_array(path, member) as array:
        for first, chunk in array.chunks(skip):
            for i in range(chunk.shape[0]):
                yield _example(chunk[i], event_shape, first + i)


class _open_array:
    """Context manager: the `_ArrayFile` of a .npy file, or of member `member` of a .npz."""

    def __init__(self, path, member=None):
        self.path, self.member = path, member

    def __enter__(self):
        if self.member is None:
            self.files = [open_input(self.path)]
            return _ArrayFile(self.files[0], self.path)
        f = open_input(self.path)
        archive = zipfile.ZipFile(f)
        self.files = [archive.open(self.member + ".npy"), archive, f]
        return _ArrayFile(self.files[0], f"{self.path}:{self.member}")

    def __exit__(self, *exc):
        for f in self.files:
            f.close()


def _npz_members(path):
    try:
        with open_input(path) as f, zipfile.ZipFile(f) as archive:
            return [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
    except zipfile.BadZipFile as e:
        raise UserError(f"{path}: not a readable .npz archive ({e})") from None


def _npz_x(path, members, condition_column, key_column):
    if "x" in members:
        return "x"
    others = [k for k in members if k not in (condition_column or "condition", key_column)]
    if len(others) != 1:
        raise UserError(f"{path}: name the examples `x` (arrays: {members})")
    return others[0]


def _npz_column(path, member, skip):
    """Yields the values of a 1-D .npz member (classes, keys) from row `skip` on."""
    with _open_array(path, member) as array:
        for _, chunk in array.chunks(skip):
            yield from chunk.reshape(-1)


# === Text and columnar files ===

def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _column_position(path, column, header):
    if column is None:
        return None
    if header is not None and column in header:
        return header.index(column)
    if str(column).isdigit():
        return int(column)
    raise UserError(f"{path}: no column {column!r}"
                    + (f" (header: {header})" if header else " (no header line)"))


def _csv_rows(path, event_shape, condition_column, key_column):
    with open_input(path, text=True) as f:
        lines = csv.reader(f)
        first = next(lines, None)
        if first is None:
            return
        header = None
        if not all(_is_number(v) for v in first if v.strip()):
            header = [h.strip() for h in first]
            first = None
        condition_at = _column_position(path, condition_column, header)
        key_at = _column_position(path, key_column, header)
        rows = itertools.chain([first] if first is not None else [], lines)
        for index, fields in enumerate(rows):
            yield _fields_row(index, fields, event_shape, condition_at, key_at)


def _fields_row(index, fields, event_shape, condition_at, key_at):
    """One CSV line's row: the key and class columns taken out, the rest the example."""
    key = condition = None
    for at in (condition_at, key_at):
        if at is not None and at >= len(fields):
            return Row(index, error=f"no column {at} in this row")
    if key_at is not None:
        key = fields[key_at]
    if condition_at is not None:
        condition, error = _condition_value(fields[condition_at])
        if error:
            return Row(index, error=error, key=key)
    values = [v for i, v in enumerate(fields) if i not in (condition_at, key_at)]
    try:
        values = [float(v) for v in values]
    except ValueError as e:
        return Row(index, error=f"not a number: {e}", key=key)
    row = _example(values, event_shape, index, key)
    row.condition = condition
    return row


def _parquet_rows(path, event_shape, condition_column, key_column, skip):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open_input(path) as f:
        yield from _parquet_file_rows(path, f, pq, pa, event_shape, condition_column, key_column, skip)


def _parquet_file_rows(path, f, pq, pa, event_shape, condition_column, key_column, skip):
    try:
        parquet = pq.ParquetFile(f)
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"{path}: not a readable Parquet file ({e})") from None
    names = parquet.schema_arrow.names
    for column in (condition_column, key_column):
        if column is not None and column not in names:
            raise UserError(f"{path}: no column {column!r} (columns: {names})")
    condition_column = condition_column or ("condition" if "condition" in names else None)
    if "x" in names:
        value_columns = ["x"]
    else:
        numeric = [n for n in names if pa.types.is_integer(parquet.schema_arrow.field(n).type)
                   or pa.types.is_floating(parquet.schema_arrow.field(n).type)]
        value_columns = [n for n in numeric if n not in (condition_column, key_column)]
        if not value_columns:
            raise UserError(f"{path}: no list column `x` and no numeric columns (columns: {names})")
    index = 0
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
        if index + batch.num_rows <= skip:
            index += batch.num_rows
            continue
        columns = {n: batch.column(n).to_pylist() for n in batch.schema.names}
        for i in range(batch.num_rows):
            if index >= skip:
                yield _parquet_row(index, columns, i, value_columns, event_shape, condition_column,
                                   key_column)
            index += 1


def _parquet_row(index, columns, i, value_columns, event_shape, condition_column, key_column):
    key = None if key_column is None else str(columns[key_column][i])
    if value_columns == ["x"]:
        values = columns["x"][i]
        if values is None:
            return Row(index, error="x is null", key=key)
    else:
        values = [columns[n][i] for n in value_columns]
    if any(v is None for v in values):
        return Row(index, error="a null value", key=key)
    row = _example(values, event_shape, index, key)
    if condition_column is not None:
        row.condition, error = _condition_value(columns[condition_column][i])
        row.error = row.error or error
    return row


def _tfrecord_rows(path, event_shape, condition_column, key_column):
    import tensorflow as tf

    condition_key = condition_column or "condition"
    records = iter(tf.data.TFRecordDataset(path).as_numpy_iterator())
    for index in itertools.count():
        try:
            record = next(records)
        except StopIteration:
            return
        except tf.errors.OpError as e:
            # A damaged file: the rest cannot be told apart, so one row says so.
            yield Row(index, error=f"unreadable TFRecord from here on ({e.message.splitlines()[0]})")
            return
        yield _example_row(index, record, event_shape, condition_key, key_column)


def _example_row(index, record, event_shape, condition_key, key_column):
    from tensorflow.core.example import example_pb2
    from google.protobuf.message import DecodeError

    try:
        features = example_pb2.Example.FromString(record).features.feature
    except DecodeError as e:
        return Row(index, error=f"not a tf.train.Example ({e})")
    key = None
    if key_column is not None and key_column in features:
        key = b"".join(features[key_column].bytes_list.value[:1]).decode("utf-8", "replace")
    if "x" not in features:
        return Row(index, error=f"no feature 'x' (features: {sorted(features)})", key=key)
    kind = features["x"].WhichOneof("kind")
    if kind not in ("float_list", "int64_list"):
        return Row(index, error=f"feature 'x' is a {kind}; expected float_list or int64_list", key=key)
    row = _example(getattr(features["x"], kind).value, event_shape, index, key)
    if condition_key in features:
        values = features[condition_key].int64_list.value or features[condition_key].float_list.value
        row.condition, error = _condition_value(values[0] if len(values) == 1 else None)
        row.error = row.error or error
    return row


# === Folders of images or WAVs ===

def folder_files(path):
    """`(names, classes, suffixes)` of an image or WAV folder: its files' names relative
    to `path` (posix, sorted), at the top or in one subfolder per class (classes: each
    file's subfolder position, else None)."""
    entries = _folder_entries(path)
    for suffixes in (IMAGE_SUFFIXES, WAV_SUFFIXES):
        ours = [n for n in entries if posixpath.splitext(n)[1].lower() in suffixes]
        top = sorted(n for n in ours if "/" not in n)
        nested = sorted((n for n in ours if "/" in n), key=lambda n: n.split("/"))
        class_dirs = sorted({n.split("/")[0] for n in nested})
        if top and class_dirs:
            raise UserError(f"{path}: has files both at the top level and in subfolders "
                            f"({class_dirs[0]}/); use one layout")
        if top:
            return top, None, suffixes
        if class_dirs:
            return nested, [class_dirs.index(n.split("/")[0]) for n in nested], suffixes
    raise UserError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) or WAV files")


def _image_values(file, spec):
    from PIL import Image, UnidentifiedImageError

    channels = spec.event_shape[-1] if len(spec.event_shape) == 3 else 1
    try:
        with open_input(file) as f, Image.open(f) as image:
            pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"), np.float32)
    except (UnidentifiedImageError, OSError) as e:
        return None, f"not a readable image ({e})"
    pixels = pixels.reshape(pixels.shape[:2] + (-1,))
    if tuple(pixels.shape) != tuple(spec.event_shape):
        return None, (f"image is {pixels.shape[1]}x{pixels.shape[0]}x{pixels.shape[2]}; the model "
                      f"takes {_shape_text(spec.event_shape)} (height, width, channels)")
    if spec.levels:
        return np.round(pixels * (spec.levels - 1) / 255.0), None
    low, high = spec.low if spec.low is not None else 0.0, spec.high if spec.high is not None else 1.0
    return low + pixels / 255.0 * (high - low), None


def _wav_values(file, spec):
    from tfgen.data.audio import mu_law_encode, read_wav

    try:
        with open_input(file) as f:
            waveform = read_wav(f, spec.sample_rate)
    except UserError as e:
        return None, str(e).split(": ", 1)[-1]
    if spec.levels:
        waveform = mu_law_encode(waveform, spec.levels)
    return waveform.reshape(-1, 1), None


def _folder_rows(path, spec, skip):
    names, classes, suffixes = folder_files(path)
    decode = _image_values if suffixes == IMAGE_SUFFIXES else _wav_values
    if decode is _wav_values and not spec.sample_rate:
        raise UserError(f"{path}: a folder of WAV files, but the model is not an audio model")
    for index in range(skip, len(names)):
        key = names[index]
        values, error = decode(_join(path, key), spec)
        row = Row(index, error=error, key=key) if error else _example(values, spec.event_shape, index, key)
        row.condition = None if classes is None else classes[index]
        yield row


def _conditions_from_file(path):
    """Yields (condition, error) per line of a condition file."""
    if path.endswith(".npy"):
        with _open_array(path) as array:
            for _, chunk in array.chunks():
                for v in chunk.reshape(-1):
                    yield _condition_value(v.item())
        return
    with open_input(path, text=True) as f:
        for i, line in enumerate(f):
            text = line.strip().split(",")[0]
            if i == 0 and not _is_number(text):
                continue  # header
            yield _condition_value(text)


def input_format(path, urls=False):
    """The format of `path`: "folder" or its extension; refuses what cannot be read, and
    URLs unless `urls` (the Beam path reads them)."""
    ext = os.path.splitext(path)[1].lower()
    if is_url(path):
        if not urls:
            raise UserError(f"{path}: URLs (gs://, s3://, hdfs://) are read by `tfgen score "
                            "--runner` (Apache Beam); give a local path here")
        if ext not in FILE_FORMATS and _folder_entries(path):
            return "folder"
        if not _url_exists(path):
            raise MissingPath(f"no input file {path}")
    elif os.path.isdir(path):
        return "folder"
    elif not os.path.isfile(path):
        raise MissingPath(f"no input file {path}")
    if ext not in FILE_FORMATS:
        raise UserError(f"{path}: unknown input format {ext!r}; use {', '.join(FILE_FORMATS)} "
                        "or a folder of images or WAV files")
    return ext


def count_rows(path):
    """The number of rows of `path` if known without reading it (for the progress bar
    and the Beam path's splits)."""
    fmt = input_format(path, urls=True)
    try:
        if fmt == ".npy":
            with _open_array(path) as array:
                return array.shape[0]
        if fmt == ".parquet":
            import pyarrow.parquet as pq

            with open_input(path) as f:
                return pq.ParquetFile(f).metadata.num_rows
        if fmt == "folder":
            return len(folder_files(path)[0])
    except (UserError, OSError):
        return None
    return None


def read_rows(path, spec, conditional=False, condition_column=None, condition_file=None,
              key_column=None, skip=0):
    """Yields one `Row` per example of `path` from row `skip` on, in order (see the
    module doc). `spec` is a `DataSpec` (or an event shape, for arrays and text)."""
    if not isinstance(spec, DataSpec):
        spec = DataSpec(tuple(spec))
    event_shape = spec.event_shape
    fmt = input_format(path, urls=True)
    if condition_file and condition_column:
        raise UserError("use either --condition-column or --condition-file")
    if condition_file and not (_url_exists(condition_file) if is_url(condition_file)
                               else os.path.isfile(condition_file)):
        raise MissingPath(f"no condition file {condition_file}")
    if (condition_file or condition_column) and not conditional:
        raise UserError("this model is unconditional: drop the condition")
    if key_column and fmt in (".npy", "folder"):
        raise UserError(f"a {fmt} input has no key column (keys are the "
                        f"{'file names' if fmt == 'folder' else 'row numbers'})")
    conditions = None
    has_conditions = bool(condition_column or condition_file)
    if fmt == ".npy":
        if condition_column:
            raise UserError("a .npy input has no columns: use --condition-file")
        rows = _array_rows(path, None, event_shape, skip)
    elif fmt == ".npz":
        members = _npz_members(path)
        rows = _array_rows(path, _npz_x(path, members, condition_column, key_column), event_shape, skip)
        name = condition_column or "condition"
        if conditional and not condition_file:
            if name not in members:
                raise UserError(f"{path}: the model is conditional and there is no array {name!r}"
                                " (name it with --condition-column or use --condition-file)")
            conditions = (_condition_value(v.item()) for v in _npz_column(path, name, skip))
            has_conditions = True
        if key_column:
            if key_column not in members:
                raise UserError(f"{path}: no array {key_column!r} (arrays: {members})")
            keys = _npz_column(path, key_column, skip)
            rows = (dataclasses.replace(r, key=str(next(keys, ""))) for r in rows)
    elif fmt == ".csv":
        rows = itertools.islice(_csv_rows(path, event_shape, condition_column, key_column), skip, None)
    elif fmt == ".parquet":
        rows = _parquet_rows(path, event_shape, condition_column, key_column, skip)
        has_conditions = True  # a `condition` column is found by name; rows without one are flagged
    elif fmt == "folder":
        rows = _folder_rows(path, spec, skip)
        has_conditions = True  # one subfolder per class; flat folders are flagged row by row
    else:
        rows = itertools.islice(_tfrecord_rows(path, event_shape, condition_column, key_column), skip, None)
        has_conditions = True  # the feature `condition`, per record
    if condition_file:
        conditions = itertools.islice(_conditions_from_file(condition_file), skip, None)
    if conditional and not has_conditions:
        raise UserError("the model is conditional: give the classes with --condition-column "
                        "or --condition-file")
    for row in rows:
        if conditions is not None:
            condition, error = next(conditions, (None, "no condition for this row"))
            if row.error is None:
                row.condition, row.error = condition, error
        elif not conditional:
            row.condition = None
        yield _check(row, conditional)


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
