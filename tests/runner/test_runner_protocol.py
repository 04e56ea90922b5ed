"""The wire codec: round trips for allowed values, a clean ProtocolError for everything else."""

import base64
import json
import os

import numpy as np
import pytest

from grader.runner import protocol
from grader.runner.protocol import ProtocolError


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("dtype", sorted(protocol.ALLOWED_DTYPES))
def test_allowed_dtypes_round_trip(dtype):
    arr = (np.arange(12) % 7).astype(dtype).reshape(3, 4)
    back = protocol.loads(protocol.dumps({"a": arr}))["a"]
    assert back.dtype == arr.dtype and back.shape == (3, 4)
    np.testing.assert_array_equal(back, arr)
    back[0, 0] = 1  # decoded arrays are ordinary writable arrays


def test_nested_values_round_trip():
    value = {"x": [1, 2.5, None, True, "s"], "t": (np.float64(3.0), np.zeros((0, 2))), "nan": float("nan")}
    back = protocol.loads(protocol.dumps(value))
    assert back["x"] == [1, 2.5, None, True, "s"]
    assert isinstance(back["t"], tuple) and back["t"][0] == 3.0 and back["t"][1].shape == (0, 2)
    assert np.isnan(back["nan"])


def test_big_endian_and_non_contiguous_arrays_are_sent_as_values():
    arr = np.arange(6, dtype=">f8").reshape(2, 3).T
    back = protocol.loads(protocol.dumps(arr))
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize("value", [
    np.array([1, None], dtype=object),
    np.array([1 + 2j]),
    np.array(["a", "b"]),
    np.zeros(2, dtype=[("a", "f8")]),
    np.array(["2020-01-01"], dtype="datetime64[D]"),
    object(),
    {1: "non-str key"},
    {"__nd__": "reserved key"},
    b"bytes",
    {1, 2},
])
def test_encoder_rejects_unsupported_values(value):
    with pytest.raises(ProtocolError):
        protocol.dumps(value)


@pytest.mark.parametrize("wire", [
    {"__nd__": ["object", [1], b64(b"\0" * 8)]},
    {"__nd__": ["O", [1], b64(b"\0" * 8)]},
    {"__nd__": ["complex128", [1], b64(b"\0" * 16)]},
    {"__nd__": ["float64", [1 << 20, 1 << 20], ""]},  # oversized shape, no data
    {"__nd__": ["float64", [2, 2], b64(b"\0" * 8)]},  # data too short for the shape
    {"__nd__": ["float64", [1], b64(b"\0" * 16)]},  # data too long for the shape
    {"__nd__": ["float64", [-1], ""]},
    {"__nd__": ["float64", [True], b64(b"\0" * 8)]},
    {"__nd__": ["float64", [1.0], b64(b"\0" * 8)]},
    {"__nd__": ["float64", [1], "not base64!!"]},
    {"__nd__": ["float64", [1] * 40, b64(b"\0" * 8)]},
    {"__nd__": ["float64", [1]]},
    {"__nd__": ["float64", [1], b64(b"\0" * 8)], "extra": 1},
    {"__tuple__": "not a list"},
])
def test_decoder_rejects_malformed_arrays(wire):
    with pytest.raises(ProtocolError):
        protocol.loads(json.dumps(wire).encode())


@pytest.mark.parametrize("body", [
    b"\xff\xfe not utf-8",
    b"{not json",
    b"[" * 100000 + b"]" * 100000,
    b'{"a": ' * 200 + b"1" + b"}" * 200,
    b"1" * 5000,  # beyond Python's int digit limit
])
def test_loads_turns_garbage_into_protocol_errors(body):
    with pytest.raises(ProtocolError):
        protocol.loads(body)


def test_framing_bounds_and_truncation():
    r, w = os.pipe()
    try:
        os.write(w, (1 << 30).to_bytes(4, "big"))
        with pytest.raises(ProtocolError, match="announced"):
            protocol.read_frame(r, max_bytes=1 << 20)
        os.write(w, protocol.frame(b'{"ok": true}'))
        assert protocol.loads(protocol.read_frame(r)) == {"ok": True}
        os.write(w, (10).to_bytes(4, "big") + b"abc")
        os.close(w)
        w = None
        with pytest.raises(protocol.ChannelClosed):
            protocol.read_frame(r)
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
    with pytest.raises(ProtocolError):
        protocol.frame(b"x" * 11, max_bytes=10)


def test_read_frame_times_out_instead_of_blocking():
    r, w = os.pipe()
    try:
        with pytest.raises(protocol.ChannelTimeout):
            protocol.read_frame(r, deadline=__import__("time").monotonic() + 0.05)
    finally:
        os.close(r)
        os.close(w)
