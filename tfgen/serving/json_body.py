"""A REST predict body read row by row, so a huge body costs little and stalls nothing.

`json.loads` decodes a whole document in one C call that holds the GIL: a 17 MB body
stalls every gRPC request for the second it takes, only for the row cap to reject it
afterwards. `parse_body` walks the top-level object itself and decodes the
`instances` / `inputs` arrays one row at a time with the standard library's own
`JSONDecoder.raw_decode`, so

- the row cap rejects a body at row `max_rows + 1`, before the rest is decoded, and
- the GIL is given up every `YIELD_ROWS` rows (`time.sleep(0)`), so a body decoded on
  a worker thread (`rest.REST_OFFLOAD_BYTES`) holds the event loop up for ~0.5 ms at a
  time (at ~1 us a row), not for the 5 ms of CPython's switch interval.

Everything else in the body is decoded by `raw_decode` as `json.loads` would. Errors are
`json.JSONDecodeError` (message, offset) or `ValueError` (e.g. an integer of more digits
than Python converts), which the REST layer answers as TF Serving's JSON parse errors.
"""

import json
import re
import time

from tfgen.serving.errors import invalid_argument

_DECODER = json.JSONDecoder()  # NaN / Infinity tokens accepted, as TF Serving does
_WHITESPACE = re.compile(r"[ \t\n\r]*")
ROW_KEYS = ("instances", "inputs")
YIELD_ROWS = 512


def _skip(text, i):
    return _WHITESPACE.match(text, i).end()


def _value(text, i):
    try:
        return _DECODER.raw_decode(text, i)
    except StopIteration:
        raise json.JSONDecodeError("Expecting value", text, i) from None


def _expect(text, i, char, what):
    if text[i:i + 1] != char:
        raise json.JSONDecodeError(f"Expecting {what}", text, i)
    return _skip(text, i + 1)


def _rows(text, i, max_rows, where):
    """Decode the array starting at text[i] ('[') one element at a time."""
    items = []
    i = _skip(text, i + 1)
    if text[i:i + 1] == "]":
        return items, i + 1
    while True:
        value, i = _value(text, i)
        items.append(value)
        if len(items) % YIELD_ROWS == 0:
            time.sleep(0)  # let the event loop's thread take the GIL
        if len(items) > max_rows:
            raise invalid_argument(
                f"'{where}' has more than {max_rows} rows, the server's limit per request "
                "(--max_rows_per_request); the rest of the body was not read"
            )
        i = _skip(text, i)
        if text[i:i + 1] == "]":
            return items, i + 1
        i = _expect(text, i, ",", "',' delimiter")


def _object(text, i, read_member):
    """Decode the object starting at text[i] ('{'); read_member(key, i) -> (value, i)."""
    doc = {}
    i = _skip(text, i + 1)
    if text[i:i + 1] == "}":
        return doc, i + 1
    while True:
        if text[i:i + 1] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
        key, i = json.decoder.scanstring(text, i + 1)
        i = _expect(text, _skip(text, i), ":", "':' delimiter")
        doc[key], i = read_member(key, i)
        i = _skip(text, i)
        if text[i:i + 1] == "}":
            return doc, i + 1
        i = _expect(text, i, ",", "',' delimiter")


def parse_body(body, max_rows):
    """Bytes of a REST body -> its JSON document, rows capped at `max_rows` per array.

    A top-level value other than an object is decoded whole only up to 200 characters
    (for the error message); TF Serving refuses it either way.
    """
    text = body.decode("utf-8")
    i = _skip(text, 0)
    if i == len(text):
        raise invalid_argument("JSON Parse error: The document is empty")
    if text[i] != "{":
        raise invalid_argument(f"JSON Value: {text[i:i + 200]} Is not object")

    def column(key, i):
        if text[i:i + 1] == "[":
            return _rows(text, i, max_rows, f"inputs.{key}")
        return _value(text, i)

    def member(key, i):
        if key in ROW_KEYS and text[i:i + 1] == "[":
            return _rows(text, i, max_rows, key)
        if key == "inputs" and text[i:i + 1] == "{":
            return _object(text, i, column)
        return _value(text, i)

    doc, i = _object(text, i, member)
    if _skip(text, i) != len(text):
        raise json.JSONDecodeError("Extra data", text, i)
    return doc
