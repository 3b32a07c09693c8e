"""The one error type for problems with what the user gave tfgen.

Validation anywhere in tfgen (configs, data, model arguments, paths, flags) raises a
`UserError`; the CLI prints it as one line and exits 2. Any other exception is a bug in
tfgen and keeps its traceback. `UserError` subclasses `ValueError`, so library callers
that catch `ValueError` keep working; `MissingPath` and `PathExists` also subclass the
matching `OSError`s.
"""

import re


class UserError(ValueError):
    """A problem with the user's input: printed as one line, exit code 2, no traceback."""


class MissingPath(UserError, FileNotFoundError):
    """A file or directory the user named does not exist (or is not what it should be)."""


class PathExists(UserError, FileExistsError):
    """Writing would overwrite something that must not be overwritten."""


_ASSERTION = re.compile(r"assertion failed: \[(?P<message>[^\]]*)\](?: \[Condition [^\]]*\])?"
                        r"(?: \[x \([^)]*\) = \] \[(?P<value>[^\]]*)\])?")
_GRAPH_LOCATION = re.compile(r"\s*\[\[\{\{node [^}]*\}\}\]\]|\s*\[Op:[^\]]*\]")


def graph_error_message(message):
    """The readable part of a TensorFlow runtime error's message.

    A check inside an exported graph (`tf.debugging.assert_*`) fails with its message,
    the condition, the tensors' graph names and the node, e.g. `assertion failed:
    [length: at most 80000 ...; asked for] [Condition x <= y ...] [x (SelectV2:0) = ]
    [10000000] ... [[{{node nj}}]] [Op:__inference_...]`; node names vary per export, so
    only the message and the offending value are kept: `length: at most 80000 ...; asked
    for 10000000`. Other messages lose only the node and op locations.
    """
    match = _ASSERTION.search(message)
    if match:
        return " ".join(part for part in match.group("message", "value") if part)
    return _GRAPH_LOCATION.sub("", message).strip()
