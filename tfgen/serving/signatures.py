"""One SignatureDef of a loaded SavedModel: resolve, check inputs, apply defaults, run.

The checks run in TF Serving's order (`predict_util.cc`, `saved_model/util.cc`) with its
messages, then the stricter ones TF Serving leaves to the runtime, each naming the input:

1. input count (`input size does not match signature: ...`),
2. every signature input present or filled from the SignatureDef's `defaults`,
3. no unknown names (`Inputs contains invalid name ...`),
4. dtype (`Expects arg[i] to be float but int64 is provided ...`), before decoding,
5. rank, fixed dimensions, rows cap, no empty batches and the element cap, on the
   shape a TensorProto *declares*, before anything is allocated (a 49-byte proto can
   declare 16M elements); then equal batch sizes and finite floats on the decoded arrays.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from tfgen.errors import graph_error_message
from tfgen.serving import tensors
from tfgen.serving.errors import Code, ServingError, invalid_argument, unimplemented

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
# API -> (method_name its signature must have, TF Serving's word for it in messages)
EXAMPLE_METHODS = {
    "Classify": (CLASSIFY_METHOD, "classification"),
    "Regress": (REGRESS_METHOD, "regression"),
}


@dataclasses.dataclass(frozen=True)
class InputLimits:
    """Caps applied to every request, before any tensor is decoded or run."""

    max_tensor_elements: int = tensors.DEFAULT_MAX_ELEMENTS
    max_rows: int = 4096
    allow_nonfinite: bool = False


def format_shape(dims):
    return "[" + ",".join("?" if d < 0 else str(d) for d in dims) + "]"


def _status_from_tf(error):
    """A TF runtime error -> ServingError with the same canonical code and the readable
    part of its message (without graph node names, which differ per export)."""
    code = {c.value[0]: c for c in Code}.get(getattr(error, "error_code", 2), Code.UNKNOWN)
    return ServingError(code, graph_error_message(getattr(error, "message", str(error))))


def spec_dims(tensor_info):
    """A TensorInfo's dims (-1 unknown), None for an unknown rank."""
    shape = tensor_info.tensor_shape
    return None if shape.unknown_rank else [d.size for d in shape.dim]


def describe(signature_def):
    """What a caller can know of a SignatureDef: {"inputs": {alias: (dtype name, shape)},
    "outputs": {...}, "defaults": [alias]}, dtype names as numpy's ("float32", "int64",
    ...), unknown dims as -1 (an unknown rank as ())."""

    def tensors(infos):
        return {alias: (tf.as_dtype(info.dtype).name, tuple(int(d.size) for d in info.tensor_shape.dim))
                for alias, info in infos.items()}

    return {"inputs": tensors(signature_def.inputs), "outputs": tensors(signature_def.outputs),
            "defaults": sorted(signature_def.defaults)}


def fill_defaults(arrays, defaults, input_dims, rows):
    """`arrays` with the inputs they leave out taken from `defaults` (alias -> array, a
    SignatureDef's `defaults`); where `input_dims` says an input is batched, a one-row
    default stands for each of `rows` rows, so defaults batch like sent inputs."""
    out = dict(arrays)
    for alias, default in defaults.items():
        if alias in out:
            continue
        dims = input_dims[alias]
        if rows and dims and dims[0] == -1 and default.ndim >= 1 and default.shape[0] == 1:
            default = np.broadcast_to(default, (rows,) + default.shape[1:])
        out[alias] = default
    return out


class Signature:
    """A signature function with its SignatureDef; thread-safe to call concurrently."""

    def __init__(self, name, signature_def, function, ranges=None):
        self.name = name
        self.signature_def = signature_def
        self.function = function
        self.method_name = signature_def.method_name
        self.inputs = dict(signature_def.inputs)
        self.outputs = dict(signature_def.outputs)
        self.input_order = sorted(self.inputs)
        self.input_dims = {alias: spec_dims(info) for alias, info in self.inputs.items()}
        self.defaults = {
            alias: tensors.proto_to_ndarray(proto, alias)
            for alias, proto in signature_def.defaults.items()
        }
        # alias -> (low, high, what the range is): `tfgen.serving.ranges`.
        self.ranges = {a: r for a, r in (ranges or {}).items() if a in self.inputs}
        # Fixed by the SignatureDef, so decided once here rather than per request.
        self.batched = self._all_batched()

    def _all_batched(self):
        """True when every input and output has an unknown leading (batch) dimension."""
        infos = list(self.inputs.values()) + list(self.outputs.values())
        for info in infos:
            dims = spec_dims(info)
            if dims is not None and (not dims or dims[0] != -1):
                return False
        return bool(self.inputs)

    # --- inputs ---------------------------------------------------------------------

    def decode_request_inputs(self, request_inputs, limits):
        """Map of alias -> TensorProto (a PredictRequest's inputs) -> checked arrays."""
        n_req, n_sig = len(request_inputs), len(self.inputs)
        if n_req > n_sig or (n_req < n_sig and not self.defaults):
            sent = sorted(request_inputs)
            expected = sorted(self.inputs)
            extra = sorted(set(sent) - set(expected))
            missing = sorted(set(expected) - set(sent))
            raise invalid_argument(
                f"input size does not match signature: {n_req}!={n_sig} "
                f"len({{{','.join(sent)}}}) != len({{{','.join(expected)}}}). "
                f"Sent extra: {{{','.join(extra)}}}. "
                f"Missing but required: {{{','.join(missing)}}}."
            )
        self._check_names(request_inputs)
        arrays = {}
        for alias in self.input_order:
            if alias not in request_inputs:
                continue
            proto = request_inputs[alias]
            self._check_dtype(alias, proto.dtype)
            try:
                declared = tensors.shape_of(proto)
            except ValueError as e:
                raise invalid_argument(f"tensor parsing error: {alias}: {e}") from None
            self.check_declared_shape(alias, declared, limits)
            arrays[alias] = tensors.proto_to_ndarray(proto, alias, limits.max_tensor_elements)
        # Names, dtypes and shapes are checked above, on the protos.
        return self._check_values_and_fill(arrays, limits)

    def _check_names(self, names):
        for alias in self.input_order:
            if alias not in names and alias not in self.defaults:
                info = self.inputs[alias]
                raise invalid_argument(
                    f"Signature input alias: {alias}(feed name: {info.name}) not found in "
                    "request and no default value provided. Inputs expected to be in the "
                    f"request {{{','.join(sorted(names))}}}, or default input alias set: "
                    f"{{{','.join(sorted(self.defaults))}}}"
                )
        unknown = sorted(set(names) - set(self.inputs))
        if unknown:
            used = sorted(set(names) & set(self.inputs))
            raise invalid_argument(
                f"Inputs contains invalid name. Used request inputs: {','.join(used)}, "
                f"request input: {','.join(sorted(names))}; signature '{self.name}' takes "
                f"inputs {{{','.join(self.input_order)}}}"
            )

    def _check_dtype(self, alias, dtype):
        want = self.inputs[alias].dtype
        if dtype != want:
            raise invalid_argument(
                f"Expects arg[{self.input_order.index(alias)}] to be "
                f"{tensors.dtype_name(want)} but {tensors.dtype_name(dtype)} is provided "
                f"(input '{alias}' of signature '{self.name}')"
            )

    def check_arrays(self, arrays, limits):
        """Apply defaults and the strict checks to already-decoded inputs."""
        self._check_names(arrays)
        for alias, array in arrays.items():
            self._check_dtype(alias, tensors.dtype_of(array))
            self.check_declared_shape(alias, list(array.shape), limits)
        return self._check_values_and_fill(arrays, limits)

    def _check_values_and_fill(self, arrays, limits):
        """Finite values, ranges and equal batch sizes of checked arrays; then defaults."""
        batch = None
        for alias, array in arrays.items():
            self._check_values(alias, array, limits)
            dims = self.input_dims[alias]
            if dims and dims[0] == -1:
                if batch is not None and array.shape[0] != batch[1]:
                    raise invalid_argument(
                        "Batching Run() input tensors must have equal 0th-dimension size: "
                        f"input '{batch[0]}' has {batch[1]} rows, input '{alias}' has "
                        f"{array.shape[0]}"
                    )
                batch = batch or (alias, array.shape[0])
        return fill_defaults(arrays, self.defaults, self.input_dims, batch and batch[1])

    def check_declared_shape(self, alias, shape, limits):
        """Rank, fixed dims, row and element caps of one input's shape (a list of ints).

        Called on a TensorProto's declared shape before it is decoded, and on a JSON
        tensor's outer dimensions before its leaves are converted, so an oversized
        request costs nothing but this check.
        """
        count = math.prod(shape)
        if count > limits.max_tensor_elements:
            raise invalid_argument(
                f"input '{alias}' has {count} elements, more than the server's "
                f"limit of {limits.max_tensor_elements} per tensor (--max_tensor_elements)"
            )
        dims = self.input_dims[alias]
        if dims is not None:
            ok = len(dims) == len(shape) and all(d < 0 or d == s for d, s in zip(dims, shape))
            if not ok:
                raise invalid_argument(
                    f"input '{alias}' of signature '{self.name}' expects shape "
                    f"{format_shape(dims)} but got {list(shape)}"
                )
            if dims and dims[0] == -1:
                if shape[0] == 0:
                    raise invalid_argument(
                        f"input '{alias}' of signature '{self.name}' is empty (0 rows); "
                        "send at least one row"
                    )
                if shape[0] > limits.max_rows:
                    raise invalid_argument(
                        f"input '{alias}' has {shape[0]} rows, more than the server's "
                        f"limit of {limits.max_rows} per request (--max_rows_per_request)"
                    )

    def _check_values(self, alias, array, limits):
        if not array.size:
            return
        finite = None
        if not limits.allow_nonfinite and array.dtype.kind == "f":
            finite = np.isfinite(array)
            if not finite.all():
                where = tuple(int(i) for i in np.argwhere(~finite)[0])
                raise invalid_argument(
                    f"input '{alias}' of signature '{self.name}' contains NaN or infinite "
                    f"values (first at index {list(where)}); the server rejects them rather "
                    "than return silent NaN results"
                )
        if alias in self.ranges:
            low, high, meaning = self.ranges[alias]
            outside = (array < low) | (array > high)
            if finite is not None:
                outside &= finite
            if outside.any():
                where = tuple(int(i) for i in np.argwhere(outside)[0])
                raise invalid_argument(
                    f"input '{alias}' of signature '{self.name}' must be in "
                    f"[{low:g}, {high:g}] ({meaning}); got {array[where].item()!r} at index "
                    f"{list(where)}"
                )

    # --- outputs and running ------------------------------------------------------------

    def resolve_outputs(self, output_filter=()):
        """Output aliases to return, in TF Serving's order; checks `output_filter`."""
        if not output_filter:
            return sorted(self.outputs)
        seen = []
        for alias in output_filter:
            if alias not in self.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(sorted(self.outputs))}}}."
                )
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.append(alias)
        return seen

    def run(self, inputs, output_names=None):
        """Call the signature function on numpy inputs; returns alias -> numpy array."""
        try:
            feeds = {alias: tf.constant(value) for alias, value in inputs.items()}
            results = self.function(**feeds)
        except tf.errors.OpError as e:
            raise _status_from_tf(e) from None
        except (TypeError, ValueError) as e:
            raise invalid_argument(f"signature '{self.name}' could not run: {e}") from None
        names = output_names or sorted(self.outputs)
        return {alias: results[alias].numpy() for alias in names}


def find_signature(signatures, name):
    """The named Signature (empty name = serving_default) or FAILED_PRECONDITION."""
    key = name or DEFAULT_SIGNATURE
    if key not in signatures:
        raise ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{key}" not found.')
    return signatures[key]


def check_example_method(signature_defs, signature_name, api):
    """TF Serving's checks before Classify/Regress, with its messages; returns the name.

    Classify then runs (`tfgen.serving.classification`); tfgen's server does not run
    Regress (no tfgen model has a regression signature): a request that passes these
    checks is answered with `example_api_unsupported`.
    """
    name = signature_name or DEFAULT_SIGNATURE
    if name not in signature_defs:
        raise invalid_argument(f"No signature was found with the name: {name}")
    method, kind = EXAMPLE_METHODS[api]
    actual = signature_defs[name].method_name
    if actual != method:
        raise invalid_argument(f"Expected {kind} signature method_name to be {method}. Was: {actual}")
    return name


def example_api_unsupported(api):
    return unimplemented(
        f"{api} on {EXAMPLE_METHODS[api][0]} signatures is not supported by tfgen's server; "
        "serve this model with tensorflow_model_server"
    )
