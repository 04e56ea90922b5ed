"""The one point where untrusted probe records enter the trusted parent: ``admit``.

The grading child answers every test with a list of records (``types.Record``), one per
spec. The runner's codec already refuses pickles and non-numeric arrays, but what reaches
the parent is still whatever a hostile notebook made the child send: a list of the wrong
length, a record that is a string, a nesting a thousand levels deep, an "error" that is
not an error. ``admit`` checks the reply's shape once, here, and turns every record it
cannot accept into an error record of type ``"protocol"`` (judged as ``protocol_error``):
it never raises, and it never changes a record it accepts (the same dict comes back).

Judges may then rely on ``Record``: a dict with str keys whose values are ``types.Data``
(None, bool, int, float, str, numeric NumPy arrays, and lists, tuples and str-keyed dicts of
them) within the bounds below, whose ``error`` (when present) is ``{"type": str,
"message": str}`` and whose ``error_at`` is a str. Their own checks (dtype, shape, finite
values) stay as defence in depth.

Trusted (parent only): not part of the student bundle.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .types import Record

MAX_DEPTH = 16                # levels of containers in a record, itself included (real ones: at most 6)
MAX_ITEMS = 200_000           # values in one record, containers included (an array is one value)
MAX_ELEMENTS = 16_000_000     # array elements in one record (the codec's limit for one array)
MAX_STRING = 100_000          # characters in one string
MAX_NDIM = 32
ATOMS = (bool, int, float, str, type(None))
NUMERIC = "biuf"  # NumPy dtype kinds a record may carry: bool, signed, unsigned, float


class Refused(Exception):
    """A record the parent cannot accept: why, and where in it (never leaves this module)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why
        self.path: list[str] = []  # the keys and indices from the record down to the value

    def __str__(self) -> str:
        return self.why + (f" at {''.join(self.path)}" if self.path else "")


def error_record(message: str) -> Record:
    """The record standing for one the parent refused."""
    return {"error": {"type": "protocol", "message": message[:300]}}


def admit(records: Any, n_specs: int) -> list[Record]:
    """The child's records for ``n_specs`` specs, each either accepted as it is or replaced
    by an ``error_record``; a reply that is not a list of ``n_specs`` records gives
    ``n_specs`` error records. Never raises."""
    if type(records) is not list or len(records) != n_specs:
        what = f"{len(records)} records" if type(records) is list else f"a {type(records).__name__}"
        return [error_record(f"the grading child returned {what} for {n_specs} cases") for _ in range(n_specs)]
    return [_admit_one(record, i) for i, record in enumerate(records)]


def _admit_one(record: Any, i: int) -> Record:
    try:
        if type(record) is not dict:
            raise Refused(f"is a {type(record).__name__}, not a dict")
        budget = {"items": MAX_ITEMS, "elements": MAX_ELEMENTS}
        _check(record, 0, budget)
        if "error" in record:
            err = record["error"]
            if not (type(err) is dict and type(err.get("type")) is str and type(err.get("message")) is str):
                raise Refused("has an 'error' that is not {type, message}")
        if "error_at" in record and type(record["error_at"]) is not str:
            raise Refused("has an 'error_at' that is not a str")
    except Refused as e:
        return error_record(f"record {i} {e}")
    except RecursionError:
        return error_record(f"record {i} is nested too deeply")
    return record  # type: ignore[return-value]  # its shape is a Record's now


def _check(value: Any, depth: int, budget: dict[str, int]) -> None:
    """Raise ``Refused`` unless ``value`` is ``types.Data`` within the bounds."""
    budget["items"] -= 1
    if budget["items"] < 0:
        raise Refused(f"holds more than {MAX_ITEMS} values")
    kind = type(value)
    if kind in ATOMS:
        if kind is str and len(value) > MAX_STRING:
            raise Refused(f"has a string of {len(value)} characters")
        return
    if kind is np.ndarray or isinstance(value, np.generic):
        if kind is not np.ndarray and not isinstance(value, (np.bool_, np.integer, np.floating)):
            raise Refused(f"has a NumPy {kind.__name__}")
        if value.dtype.kind not in NUMERIC or value.dtype.hasobject:
            raise Refused(f"has an array of dtype {value.dtype}")
        if value.ndim > MAX_NDIM:
            raise Refused(f"has an array of {value.ndim} dimensions")
        budget["elements"] -= value.size
        if budget["elements"] < 0:
            raise Refused(f"holds more than {MAX_ELEMENTS} array elements")
        return
    if depth >= MAX_DEPTH:
        raise Refused(f"is nested more than {MAX_DEPTH} deep")
    if kind is list or kind is tuple:
        items = enumerate(value)
    elif kind is dict:
        items = value.items()
    else:
        raise Refused(f"has a value of type {kind.__name__}")
    for key, item in items:
        try:
            if kind is dict and type(key) is not str:
                raise Refused(f"has a key of type {type(key).__name__}")
            _check(item, depth + 1, budget)
        except Refused as e:
            e.path.insert(0, f"[{key!r}]" if kind is dict else f"[{key}]")
            raise
