"""Status codes and messages, as TF Serving reports them.

Every failure the server answers with is a `ServingError`: a gRPC status code plus a
message. The gRPC servicers abort with it as is; the REST API maps the code to an HTTP
status with TF Serving's table (`http_server.cc`, `ToHTTPStatusCode`) and puts the
message in an `{"error": ...}` body.
"""

import grpc

Code = grpc.StatusCode

# TF Serving's REST mapping. FAILED_PRECONDITION is 400, not 412, in TF Serving.
HTTP_STATUS = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# tensorflow.error.Code numbers, for the `status` field of GetModelStatus responses.
TF_ERROR_CODE = {code: code.value[0] for code in Code}


# Messages quote what the client sent (model names, values); a 1 MB model name must
# still give NOT_FOUND, not an oversized status that gRPC turns into RESOURCE_EXHAUSTED.
MAX_MESSAGE_CHARS = 2000


def bounded(message, limit=MAX_MESSAGE_CHARS):
    """`message` cut to `limit` characters, saying how much was cut."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... ({len(message) - limit} more characters)"


class ServingError(Exception):
    """A request failure: `code` is a `grpc.StatusCode`, `message` TF Serving's text
    (bounded in length, whatever it quotes)."""

    def __init__(self, code, message):
        message = bounded(message)
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS.get(self.code, 500)

    def __repr__(self):
        return f"ServingError({self.code.name}, {self.message!r})"


def invalid_argument(message):
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message):
    return ServingError(Code.NOT_FOUND, message)


def unavailable(message):
    return ServingError(Code.UNAVAILABLE, message)


def deadline_exceeded(message="Deadline Exceeded"):
    return ServingError(Code.DEADLINE_EXCEEDED, message)


def unimplemented(message):
    return ServingError(Code.UNIMPLEMENTED, message)


def internal(message):
    return ServingError(Code.INTERNAL, message)
