"""TensorProto and JSON <-> numpy, with the element count checked before decoding.

A TensorProto declares its shape apart from its values, so 22 bytes can ask for a
gigabyte (`tf.make_ndarray` would allocate it and fill it with the one value given).
`proto_to_ndarray` computes the element count from the declared shape first, refuses
it above the cap, and accepts only as many values as the shape needs: all of them, or
exactly one (the "splat" form `tf.make_tensor_proto(1.0, shape=[3])` writes); only
then is it decoded.

Responses are encoded by hand, not by `tf.make_tensor_proto`: that writes numeric
tensors of more than one element as `tensor_content`, while TF Serving answers in the
typed fields (`float_val`, ...), which clients read directly.

JSON follows TF Serving's `json_tensor.cc`: dense nested lists, the leaf type checked
against the signature's dtype, `{"b64": ...}` for DT_STRING, `NaN`/`Infinity` tokens.
"""

import base64
import binascii
import math
import sys

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from tfgen.serving.errors import invalid_argument

DEFAULT_MAX_ELEMENTS = 16 * 1024 * 1024
MAX_RANK = 32

# DataType -> (numpy dtype, TF's DataTypeString name, TensorProto value field).
_DTYPES = {
    types_pb2.DT_FLOAT: (np.float32, "float", "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double", "double_val"),
    types_pb2.DT_HALF: (np.float16, "half", "half_val"),
    types_pb2.DT_INT8: (np.int8, "int8", "int_val"),
    types_pb2.DT_INT16: (np.int16, "int16", "int_val"),
    types_pb2.DT_INT32: (np.int32, "int32", "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64", "int64_val"),
    types_pb2.DT_UINT8: (np.uint8, "uint8", "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "uint16", "int_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32", "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64", "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool", "bool_val"),
    types_pb2.DT_STRING: (np.object_, "string", "string_val"),
}
# Typed fields whose values numpy takes as they are (no bit patterns, no narrowing).
_PLAIN_FIELDS = frozenset((types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT32,
                           types_pb2.DT_INT64, types_pb2.DT_BOOL))
_LITTLE_ENDIAN = sys.byteorder == "little"  # tensor_content is little-endian
_BY_NUMPY = {np.dtype(np_dtype): enum for enum, (np_dtype, _, _) in _DTYPES.items()}
_FLOATS = (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF)


def dtype_name(dtype):
    """TF's name for a DataType enum value, e.g. DT_FLOAT -> 'float'."""
    if dtype in _DTYPES:
        return _DTYPES[dtype][1]
    name = types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)
    return name[3:].lower() if name.startswith("DT_") else name


def numpy_dtype(dtype):
    if dtype not in _DTYPES:
        raise invalid_argument(f"Unsupported tensor dtype: {dtype_name(dtype)}")
    return np.dtype(_DTYPES[dtype][0])


def dtype_of(array):
    """The DataType enum of a numpy array (object/str/bytes arrays are DT_STRING)."""
    if array.dtype.kind in "OSU":
        return types_pb2.DT_STRING
    try:
        return _BY_NUMPY[array.dtype]
    except KeyError:
        raise invalid_argument(f"Unsupported numpy dtype: {array.dtype}") from None


def shape_of(proto):
    """Declared shape of a TensorProto as a list of ints; rejects impossible shapes."""
    if proto.tensor_shape.unknown_rank:
        raise ValueError("the shape has unknown rank")
    dims = [d.size for d in proto.tensor_shape.dim]
    if len(dims) > MAX_RANK:
        raise ValueError(f"rank {len(dims)} exceeds the maximum of {MAX_RANK}")
    for d in dims:
        if d < 0:
            raise ValueError(f"dimension {d} in shape {dims} is negative")
    return dims


def proto_to_ndarray(proto, name="tensor", max_elements=DEFAULT_MAX_ELEMENTS):
    """Decode a TensorProto into a numpy array, checking its size before allocating.

    Raises INVALID_ARGUMENT naming `name` when the shape is impossible, larger than
    `max_elements`, or does not match the number of values the proto holds. What
    passes is decoded by numpy directly where the layout is plain (little-endian
    `tensor_content`, or one typed value per element of a type numpy holds as such),
    else by `tf.make_ndarray` (4x slower on a batch-1 request:
    `bench/serving.py --decode-cost`).
    """

    def fail(detail):
        return invalid_argument(f"tensor parsing error: {name}: {detail}")

    try:
        dims = shape_of(proto)
    except ValueError as e:
        raise fail(str(e)) from None
    count = math.prod(dims)  # Python ints: no overflow, whatever the declared dims
    if count > max_elements:
        raise fail(
            f"shape {dims} has {count} elements, more than the server's limit of "
            f"{max_elements} per tensor (--max_tensor_elements)"
        )
    if proto.dtype not in _DTYPES:
        raise fail(f"unsupported dtype {dtype_name(proto.dtype)}")
    np_dtype, _, field = _DTYPES[proto.dtype]
    if proto.tensor_content:
        if proto.dtype == types_pb2.DT_STRING:
            raise fail("string tensors are sent in string_val, not tensor_content")
        expected = count * np.dtype(np_dtype).itemsize
        if len(proto.tensor_content) != expected:
            raise fail(
                f"tensor_content holds {len(proto.tensor_content)} bytes but shape "
                f"{dims} of {dtype_name(proto.dtype)} needs {expected}"
            )
        if _LITTLE_ENDIAN:
            # A copy, as tf.make_ndarray's: callers (clients too) get a writable array.
            return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(dims).copy()
    else:
        # tf.make_ndarray would pad any shortfall with the last value; only the splat
        # form (one value for every element) is meant that way.
        values = getattr(proto, field)
        n = len(values)
        if n != count and not (n == 1 and count > 1):
            raise fail(f"shape {dims} declares {count} elements but the proto holds {n} values")
        if n == count and proto.dtype in _PLAIN_FIELDS:
            return np.array(values, dtype=np_dtype).reshape(dims)
    return tf.make_ndarray(proto)


def ndarray_to_proto(array):
    """Encode a numpy array as TF Serving's default `AsProtoField` does (typed fields)."""
    array = np.asarray(array)
    dtype = dtype_of(array)
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for d in array.shape:
        proto.tensor_shape.dim.add().size = int(d)
    flat = array.reshape(-1)
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    elif dtype == types_pb2.DT_HALF:
        proto.half_val.extend(flat.view(np.uint16).tolist())  # half_val holds the bits
    else:
        getattr(proto, _DTYPES[dtype][2]).extend(flat.tolist())
    return proto


# --- JSON -------------------------------------------------------------------------


def _json_repr(value):
    import json

    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _json_type(value):
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def is_b64_object(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _type_error(value, dtype):
    return invalid_argument(
        f"JSON Value: {_json_repr(value)} Type: {_json_type(value)} is not of expected "
        f"type: {dtype_name(dtype)}"
    )


def _leaf(value, dtype):
    """Check one JSON leaf against dtype, as json_tensor.cc's AddValueToTensor does."""
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, dict):
            if not is_b64_object(value):
                raise invalid_argument(
                    f"JSON Value: {_json_repr(value)} not formatted correctly for base64 data"
                )
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise invalid_argument("Unable to base64 decode") from None
        raise _type_error(value, dtype)
    if isinstance(value, bool):
        if dtype == types_pb2.DT_BOOL:
            return value
        raise _type_error(value, dtype)
    if dtype == types_pb2.DT_BOOL:
        raise _type_error(value, dtype)
    if dtype in _FLOATS:
        if not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        if math.isfinite(value):
            info = np.finfo(_DTYPES[dtype][0])
            if isinstance(value, int):
                if abs(value) > 2 ** info.nmant * 2 - 1:
                    raise invalid_argument(
                        f"Cannot convert JSON value: {value} to {dtype_name(dtype)} without "
                        "loss of precision."
                    )
            elif not (float(info.min) <= value <= float(info.max)):
                raise invalid_argument(
                    f"Cannot convert JSON value: {_json_repr(value)} to {dtype_name(dtype)} "
                    "without loss of precision."
                )
        return value
    # Integer dtypes: JSON integers only, within range.
    if not isinstance(value, int):
        raise _type_error(value, dtype)
    info = np.iinfo(_DTYPES[dtype][0])
    if not info.min <= value <= info.max:
        raise _type_error(value, dtype)
    return value


def dense_shape(value):
    """The shape nested JSON lists claim, read along their first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def json_to_ndarray(value, dtype, max_elements=DEFAULT_MAX_ELEMENTS):
    """A JSON value (nested lists of leaves) -> numpy array of the signature's dtype."""
    shape = dense_shape(value)
    if len(shape) > MAX_RANK:
        raise invalid_argument(f"JSON tensor rank {len(shape)} exceeds the maximum of {MAX_RANK}")
    count = math.prod(shape)
    if count > max_elements:
        raise invalid_argument(
            f"JSON tensor of shape {shape} has {count} elements, more than the server's "
            f"limit of {max_elements} per tensor (--max_tensor_elements)"
        )
    rank = len(shape)
    flat = []

    def fill(v, level):
        if not isinstance(v, list):
            if level != rank:
                raise invalid_argument(
                    f"JSON Value: {_json_repr(v)} found at incorrect level: {level + 1} in "
                    f"the JSON DOM. Expected at level: {rank}"
                )
            flat.append(_leaf(v, dtype))
            return
        if level >= rank:
            raise invalid_argument(
                f"Encountered list at unexpected level: {level} expected < {rank}"
            )
        if len(v) != shape[level]:
            raise invalid_argument(
                f"Encountered list at unexpected size: {len(v)} at level: {level} expected "
                f"size: {shape[level]}"
            )
        for item in v:
            fill(item, level + 1)

    fill(value, 0)
    np_dtype = numpy_dtype(dtype)
    if dtype == types_pb2.DT_STRING:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    return np.array(flat, dtype=np_dtype).reshape(shape)


def _float_leaf(v):
    # Shortest text that round-trips the float32, as TF Serving writes it (0.2, not
    # 0.20000000298...). Non-finite values stay floats: json writes NaN/Infinity.
    return float(str(v)) if math.isfinite(v) else float(v)


def ndarray_to_json(array, name=""):
    """A numpy array -> JSON-ready nested lists, as TF Serving's MakeJsonFromTensors."""
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        as_b64 = name.endswith("_bytes")

        def enc(v):
            if isinstance(v, str):
                return v
            if not as_b64:
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(v).decode("ascii")}

        flat = [enc(v) for v in array.reshape(-1)]
    elif array.dtype == np.float32 or array.dtype == np.float16:
        flat = [_float_leaf(v) for v in array.reshape(-1)]
    else:
        return array.tolist()
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(array.shape).tolist()
