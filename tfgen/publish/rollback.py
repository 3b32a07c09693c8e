"""Rolling a served base path back to its previous version, and undoing that.

TF Serving (and `tfgen serve`) serve the newest version under a base path (the default
`latest` policy). Rolling back renames the newest version directory to
`rolled-back-<N>` (`tfgen.versions.ROLLED_BACK_PREFIX`): one `rename` within the base
path, so a polling server sees the version gone in one step, never half of it; it then
loads the version before (if it had unloaded it) and unloads N only once that one
serves, so no request fails. Nothing is deleted: `restore` renames it back, and no later
export reuses its number. Standard library only, like the servers' version scan.

    base/1/  base/2/  base/3/     --rollback -> base/1/  base/2/  base/rolled-back-3/
"""

import os

from tfgen.errors import MissingPath, PathExists, UserError
from tfgen.versions import ROLLED_BACK_PREFIX, is_complete, rolled_back_version, version_dirs


def resolve_base_path(name_or_path, models_dir="saved_models"):
    """A base path as given, or `saved_models/NAME` for a bare model name."""
    if os.path.isdir(name_or_path):
        return name_or_path
    candidate = os.path.join(models_dir, name_or_path)
    if os.sep not in name_or_path and os.path.isdir(candidate):
        return candidate
    raise MissingPath(f"no model base path {name_or_path}" + ("" if os.sep in name_or_path
                                                            else f" (nor {candidate})"))


def versions(base_path):
    """`{version: path}` of the complete versions of base path `base_path`."""
    found = version_dirs(base_path)
    if found is None:
        raise MissingPath(f"no model base path {base_path}")
    if is_complete(base_path):
        raise UserError(f"{base_path} is a version directory; name its base path (the directory above)")
    return found


def rolled_back(base_path):
    """`{version: path}` of the versions rolled back under `base_path`."""
    entries = os.scandir(base_path) if os.path.isdir(base_path) else []
    return {rolled_back_version(e.name): e.path for e in entries
            if e.is_dir() and rolled_back_version(e.name) is not None}


def rollback(base_path):
    """Sets the newest version of `base_path` aside; returns (that version, the one now newest).

    Raises:
      UserError: fewer than two versions (nothing to roll back to).
      PathExists: that version was rolled back before and its copy is still there.
    """
    published = versions(base_path)
    if len(published) < 2:
        raise UserError(f"{base_path} holds {'only version ' + str(min(published)) if published else 'no version'}: "
                        "nothing to roll back to")
    previous, newest = sorted(published)[-2:]
    aside = os.path.join(base_path, f"{ROLLED_BACK_PREFIX}{newest}")
    if os.path.exists(aside):
        raise PathExists(f"{aside} already exists (version {newest} was rolled back before): move it away first")
    os.rename(published[newest], aside)
    return newest, previous


def restore(base_path, version=None):
    """Puts rolled-back `version` (default: the newest rolled back) back; returns its number.

    Raises:
      MissingPath: no such rolled-back version.
      PathExists: a version of that number exists again.
    """
    versions(base_path)
    aside = rolled_back(base_path)
    if not aside:
        raise MissingPath(f"{base_path} holds no rolled-back version")
    version = max(aside) if version is None else version
    if version not in aside:
        raise MissingPath(f"{base_path} has no rolled-back version {version}; it has {sorted(aside)}")
    target = os.path.join(base_path, str(version))
    if os.path.exists(target):
        raise PathExists(f"{target} exists: version {version} was published again; not overwritten")
    os.rename(aside[version], target)
    return version
