"""The one error type for problems with what the user gave tfgen.

Validation anywhere in tfgen (configs, data, model arguments, paths, flags) raises a
`UserError`; the CLI prints it as one line and exits 2. Any other exception is a bug in
tfgen and keeps its traceback. `UserError` subclasses `ValueError`, so library callers
that catch `ValueError` keep working; `MissingPath` and `PathExists` also subclass the
matching `OSError`s.
"""


class UserError(ValueError):
    """A problem with the user's input: printed as one line, exit code 2, no traceback."""


class MissingPath(UserError, FileNotFoundError):
    """A file or directory the user named does not exist (or is not what it should be)."""


class PathExists(UserError, FileExistsError):
    """Writing would overwrite something that must not be overwritten."""
