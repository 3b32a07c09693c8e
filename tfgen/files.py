"""Writing files so that no reader ever sees half of one.

Every file tfgen writes for others to read (run files, pictures, WAVs, score CSVs, export
metadata) goes through `atomic_path`: the content is written to a hidden temporary
sibling in the same directory, then renamed onto the final name, which POSIX makes
atomic. A failure or an interrupt removes the temporary file and leaves any previous
file in place.
"""

import contextlib
import json
import os


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path next to `path`; renames it onto `path` if the block succeeds.

    The parent directory is created if missing. Example:

        with atomic_path("out/grid.png") as tmp:
            image.save(tmp, format="PNG")
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """`open(path, mode)` whose file appears under `path` only once the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_open(path) as f:
        f.write(text)


def write_json(path, data):
    """Writes `data` as indented, key-sorted JSON to `path` atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")
