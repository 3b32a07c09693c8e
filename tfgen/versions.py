"""The version directories of a model's base path, as TF Serving reads them.

    base_path/
      1/  saved_model.pb, variables/, ...
      2/  ...

A version is a directory whose name is ASCII digits only (`^[0-9]+$`) and whose value
fits in an int64, as TF Serving's version numbers do. Anything else is not a version and
is ignored: `.3.tmp-1234` (an export in progress), `latest`, `²` (`str.isdigit()` accepts
it, `int()` does not), `99999999999999999999`. A version counts only once it is complete,
that is, once it holds `saved_model.pb` (or `saved_model.pbtxt`), so an integer directory
still being copied in is skipped until its graph file lands.

The export reader (`tfgen sample --model DIR`, `tfgen check`, `tfgen score`) and the
model server both list versions here, so the version a reader picks is the one the
server serves. Standard library only, so nothing that lists versions needs TensorFlow.
"""

import os
import re

INT64_MAX = 2**63 - 1
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
# [0-9], not \d: \d matches every Unicode digit. fullmatch, not $: $ also matches
# before a trailing newline.
_VERSION_NAME = re.compile(r"[0-9]+")


def parse_version(name):
    """The version number a directory name stands for, or None if it is not a version."""
    if not _VERSION_NAME.fullmatch(name):
        return None
    version = int(name)
    return version if version <= INT64_MAX else None


#: A version set aside by `tfgen publish --rollback` is renamed `rolled-back-<N>`: no
#: server takes it for a version (not digits), it can be renamed back, and
#: `next_version` never gives its number to another export.
ROLLED_BACK_PREFIX = "rolled-back-"


def rolled_back_version(name):
    """The version number a rolled-back directory name stands for, or None."""
    if not name.startswith(ROLLED_BACK_PREFIX):
        return None
    return parse_version(name[len(ROLLED_BACK_PREFIX):])


def is_complete(path):
    """True when `path` holds a SavedModel's graph file."""
    return any(os.path.isfile(os.path.join(path, f)) for f in SAVED_MODEL_FILES)


def version_dirs(base_path):
    """`{version: path}` of the complete versions under `base_path`.

    Returns None when `base_path` does not exist (or is not a directory), `{}` when it
    holds no complete version. When two names give one number (`7` and `007`), the
    one spelled as the number is used.
    """
    try:
        entries = sorted(os.scandir(base_path), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    found = {}
    for entry in entries:
        version = parse_version(entry.name)
        if version is None or not entry.is_dir() or not is_complete(entry.path):
            continue
        if version not in found or entry.name == str(version):
            found[version] = entry.path
    return found
