"""Writing score rows by the output's extension: `.csv`, `.jsonl` or `.parquet`.

Every format has the same columns (`FIELDS`): `index` (the input row's position),
`key` (the input's key: file name, key column; empty if none), `log_prob` and
`bits_per_dim` (empty/null when the row has no score), `is_finite` and `error` (empty
when the row was scored). Floats are the float32 values the model returned, written
exactly (shortest repr of the double). An extension no writer knows is refused by
`check_output` before any work.
"""

import csv
import json
import os

from tfgen.errors import UserError

FIELDS = ("index", "key", "log_prob", "bits_per_dim", "is_finite", "error")
#: Every column a tfgen output may have and its Parquet type (`tfgen classify` adds some).
TYPES = {"index": "int64", "key": "string", "log_prob": "float64", "bits_per_dim": "float64",
         "is_finite": "bool_", "error": "string", "class": "int64", "probability": "float64",
         "rejected": "bool_", "ood_score": "float64"}


def csv_cells(record, fields=FIELDS):
    """A record's CSV cells: None empty, booleans `true`/`false`, floats exact."""
    return ["" if record[k] is None else
            str(record[k]).lower() if isinstance(record[k], bool) else
            repr(record[k]) if isinstance(record[k], float) else record[k]
            for k in fields]


def parquet_schema(fields=FIELDS):
    """The pyarrow schema of records with these columns."""
    import pyarrow as pa

    return pa.schema([(k, getattr(pa, TYPES[k])()) for k in fields])


class CsvWriter:
    def __init__(self, f, fields=FIELDS):
        self._writer = csv.writer(f)
        self._writer.writerow(fields)
        self._fields = fields

    def write(self, record):
        self._writer.writerow(csv_cells(record, self._fields))

    def close(self):
        pass


class JsonlWriter:
    def __init__(self, f, fields=FIELDS):
        self._f = f
        self._fields = fields

    def write(self, record):
        self._f.write(json.dumps({k: record[k] for k in self._fields}) + "\n")

    def close(self):
        pass


class ParquetWriter:
    """Row groups of `group_rows` rows, so memory holds one group."""

    def __init__(self, f, fields=FIELDS, group_rows=65536):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._schema = parquet_schema(fields)
        self._writer = pq.ParquetWriter(f, self._schema)
        self._group_rows = group_rows
        self._pending = []

    def write(self, record):
        self._pending.append(record)
        if len(self._pending) >= self._group_rows:
            self._flush()

    def _flush(self):
        if self._pending:
            self._writer.write_table(self._pa.Table.from_pylist(self._pending, schema=self._schema))
            self._pending = []

    def close(self):
        self._flush()
        self._writer.close()


#: extension -> (writer class, open mode)
WRITERS = {".csv": (CsvWriter, "w"), ".jsonl": (JsonlWriter, "w"), ".parquet": (ParquetWriter, "wb")}


def check_output(path):
    """The extension of `path` if a writer knows it, else a UserError (before any work)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in WRITERS:
        raise UserError(f"--out {path}: cannot write {ext or 'a file without extension'!r}; "
                        f"name it {', '.join('*' + e for e in WRITERS)}")
    return ext


def open_writer(f, ext, fields=FIELDS):
    """A writer of format `ext` on the open file `f` (opened with `WRITERS[ext][1]`)."""
    return WRITERS[ext][0](f, fields)


def read_records(path):
    """The records of a score file in any of the formats, as dicts (for tests and `tfgen ood`)."""
    ext = check_output(path)
    if ext == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, newline="") as f:
        if ext == ".jsonl":
            return [json.loads(line) for line in f if line.strip()]
        return [{k: _parsed(k, v) for k, v in r.items()} for r in csv.DictReader(f)]


def _parsed(column, text):
    """A CSV cell back to its value ("" is None), by the column's type."""
    kind = TYPES.get(column, "string")
    if text == "":
        return None
    if kind == "int64":
        return int(text)
    if kind == "float64":
        return float(text)
    if kind == "bool_":
        return text == "true"
    return text
