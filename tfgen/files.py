"""Writing files and directories so that no reader ever sees half of one.

Every file tfgen writes for others to read (run files, pictures, WAVs, score CSVs) goes
through `atomic_path`, and every SavedModel version directory through
`atomic_directory`: the content is written to a hidden temporary sibling in the same
directory (`.NAME.tmp-PID`, which TF Serving ignores: not an integer), then renamed onto
the final name, which POSIX makes atomic. A failure or an interrupt removes the
temporary copy and leaves any previous file in place.
"""

import contextlib
import json
import os
import shutil

from tfgen.errors import PathExists


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
def atomic_directory(path):
    """Yields an empty temporary directory next to `path`; renames it to `path` if the
    block succeeds. Never replaces: raises `PathExists` if `path` exists, before the
    block and again (another writer may have taken it) before the rename."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    _refuse_existing(path)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
        _refuse_existing(path)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _refuse_existing(path):
    if os.path.exists(path):
        raise PathExists(f"{path} already exists: exported versions are never overwritten; "
                         "pass another version (or none, for the next one)")


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
