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


# The message may hold brackets itself ("eta: must be in [0, 1]"): it ends at the "]"
# that the condition, the value or the end of the assertion follows.
_ASSERTION = re.compile(r"assertion failed: \[(?P<message>.*?)\](?= \[Condition | \[x \(|\s*$|\s*\[\[)"
                        r"(?: \[Condition [^\]]*\])?"
                        r"(?: \[x \([^)]*\) = \] \[(?P<value>[^\]]*)\])?")
_GRAPH_LOCATION = re.compile(r"\s*\[\[\{\{node [^}]*\}\}\]\]|\s*\[Op:[^\]]*\]|\{\{function_node [^}]*\}\}\s*")


#: Lines of a TensorFlow error that say where, not what.
_LOCATION_LINES = ("Graph execution error", "Detected at node", "[[", "File ", "<stack traces")


def graph_error_message(message, limit=None):
    """The readable part of a TensorFlow runtime error's message, on one line.

    A check inside an exported graph (`tf.debugging.assert_*`) fails with its message,
    the condition, the tensors' graph names and the node, e.g. `assertion failed:
    [length: at most 80000 ...; asked for] [Condition x <= y ...] [x (SelectV2:0) = ]
    [10000000] ... [[{{node nj}}]] [Op:__inference_...]`; node names vary per export, so
    only the message and the offending value are kept: `length: at most 80000 ...; asked
    for 10000000`. Other messages give their first line that says what went wrong,
    without node and op locations. `limit` caps the length.
    """
    match = _ASSERTION.search(message)
    if match:
        text, value = match.group("message", "value")
        if value:  # "...; asked for" reads on into the value; other messages get it after
            # A setting broadcast to every row prints once per row ("500 500 500..."): once is enough.
            values = value.removesuffix("...").split()
            if values and len(set(values)) == 1:
                value = values[0]
            text = f"{text} {value}" if text.endswith(("for", "got", ":", "=")) else f"{text} (got {value})"
    else:
        lines = [_GRAPH_LOCATION.sub("", line).strip() for line in message.splitlines()]
        useful = [line for line in lines if line and not line.startswith(_LOCATION_LINES)]
        text = (useful or [line for line in lines if line] or ["error"])[0]
    text = text.replace("\\'", "'")  # TensorFlow prints a check's message as a repr
    return text if limit is None else text[:limit]
