"""Wire format between the trusted parent and the sandboxed child.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON.
NumPy arrays travel as ``{"__nd__": [dtype_name, shape, base64_bytes]}`` and tuples as
``{"__tuple__": [...]}``. Only an allowlist of plain numeric dtypes is accepted; there is
no pickle, no ``allow_pickle``, no eval anywhere. Everything the parent receives goes
through :func:`from_wire`, which validates it and raises :class:`ProtocolError` on
anything malformed.

This module is imported by the child too, so it uses only the standard library and NumPy.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import select
import struct
import time
from typing import Any

import numpy as np

MAX_MESSAGE_BYTES = 64 << 20
CONTROL_MESSAGE_BYTES = 1 << 16  # largest message on the fork server's control socket
MAX_ARRAY_ELEMENTS = 1 << 24
MAX_NDIM = 32
MAX_DEPTH = 64

ND_TAG = "__nd__"
TUPLE_TAG = "__tuple__"
_TAGS = frozenset({ND_TAG, TUPLE_TAG})

# Explicit little-endian so the format does not depend on the host.
ALLOWED_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "bool",
        "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64",
    )
}

_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


class ChannelClosed(ProtocolError):
    """End of file on the channel: the peer exited or closed its end."""


class ChannelTimeout(Exception):
    """No complete message arrived before the deadline."""


# --- codec -------------------------------------------------------------------------------


class Wire:
    """A value converted to wire data once, to be sent many times (the same specs to every child)."""

    __slots__ = ("data",)

    def __init__(self, obj: Any):
        self.data = to_wire(obj)


def to_wire(obj: Any, _depth: int = 0) -> Any:
    """Turn ``obj`` into plain JSON data; arrays and tuples become tagged objects."""
    if _depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, Wire):
        return obj.data
    if isinstance(obj, (np.ndarray, np.generic)):
        return {ND_TAG: _encode_array(np.asarray(obj))}
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, tuple):
        return {TUPLE_TAG: [to_wire(x, _depth + 1) for x in obj]}
    if isinstance(obj, list):
        return [to_wire(x, _depth + 1) for x in obj]
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise ProtocolError(f"dict key must be str, not {type(key).__name__}")
            if key in _TAGS:
                raise ProtocolError(f"dict key {key!r} is reserved")
            out[str(key)] = to_wire(value, _depth + 1)
        return out
    raise ProtocolError(f"cannot send a value of type {type(obj).__name__}")


def _encode_array(arr: np.ndarray) -> list:
    name = arr.dtype.name
    if name not in ALLOWED_DTYPES or arr.dtype.kind not in "biuf":
        raise ProtocolError(f"dtype {arr.dtype!s} is not allowed")
    if arr.size > MAX_ARRAY_ELEMENTS:
        raise ProtocolError(f"array of {arr.size} elements is too large")
    data = np.ascontiguousarray(arr, dtype=ALLOWED_DTYPES[name]).tobytes()
    return [name, [int(n) for n in arr.shape], base64.b64encode(data).decode("ascii")]


def from_wire(obj: Any, _depth: int = 0) -> Any:
    """Validate JSON data from the peer and rebuild arrays and tuples."""
    if _depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, list):
        return [from_wire(x, _depth + 1) for x in obj]
    if isinstance(obj, dict):
        tags = _TAGS.intersection(obj)
        if tags:
            if len(obj) != 1:
                raise ProtocolError("tagged object with extra keys")
            (tag,) = tags
            if tag == ND_TAG:
                return _decode_array(obj[ND_TAG])
            items = obj[TUPLE_TAG]
            if not isinstance(items, list):
                raise ProtocolError("__tuple__ payload must be a list")
            return tuple(from_wire(x, _depth + 1) for x in items)
        return {str(k): from_wire(v, _depth + 1) for k, v in obj.items()}
    raise ProtocolError(f"unexpected JSON value of type {type(obj).__name__}")


def _decode_array(payload: Any) -> np.ndarray:
    if not (isinstance(payload, list) and len(payload) == 3):
        raise ProtocolError("__nd__ payload must be [dtype, shape, data]")
    name, shape, data = payload
    if not isinstance(name, str) or name not in ALLOWED_DTYPES:
        raise ProtocolError(f"dtype {name!r} is not allowed")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise ProtocolError("shape must be a list of at most 32 sizes")
    size = 1
    for n in shape:
        if type(n) is not int or n < 0:
            raise ProtocolError(f"bad dimension {n!r} in shape")
        size *= n
        if size > MAX_ARRAY_ELEMENTS:
            raise ProtocolError(f"array shape {shape} is too large")
    if not isinstance(data, str):
        raise ProtocolError("array data must be a base64 string")
    dtype = ALLOWED_DTYPES[name]
    if len(data) > 4 * math.ceil(size * dtype.itemsize / 3) + 4:
        raise ProtocolError("array data longer than its shape allows")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ProtocolError(f"bad base64 array data: {exc}") from None
    if len(raw) != size * dtype.itemsize:
        raise ProtocolError(f"array data has {len(raw)} bytes, shape {shape} needs {size * dtype.itemsize}")
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def dumps(obj: Any) -> bytes:
    """Encode a message body (already wire data or plain Python values)."""
    return json.dumps(to_wire(obj), separators=(",", ":")).encode("utf-8")


def loads(body: bytes) -> Any:
    """Decode and validate a message body; any failure is a ProtocolError."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"message is not valid JSON: {str(exc)[:200]}") from None
    try:
        return from_wire(data)
    except RecursionError:
        raise ProtocolError("value nested too deeply") from None


# --- framing -----------------------------------------------------------------------------


def frame(body: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    if len(body) > max_bytes:
        raise ProtocolError(f"message of {len(body)} bytes exceeds the {max_bytes}-byte limit")
    return _HEADER.pack(len(body)) + body


def write_all(fd: int, data: bytes, deadline: float | None = None) -> None:
    """Write everything to ``fd``; with a deadline the fd must be non-blocking."""
    view = memoryview(data)
    while view:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout("timed out writing to the child")
            select.select([], [fd], [], remaining)
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise ChannelClosed("peer closed the channel") from None
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks = []
    while n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout("no reply before the deadline")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
        try:
            chunk = os.read(fd, min(n, 1 << 20))
        except BlockingIOError:
            continue
        if not chunk:
            raise ChannelClosed("peer closed the channel")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None = None, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """Read one frame body. Raises ChannelClosed, ChannelTimeout or ProtocolError."""
    (length,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if length > max_bytes:
        raise ProtocolError(f"peer announced a {length}-byte message (limit {max_bytes})")
    return _read_exact(fd, length, deadline)
