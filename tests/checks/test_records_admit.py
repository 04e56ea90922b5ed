"""``records.admit``, the one point where the child's records enter the parent: every forged
shape becomes a ``protocol`` error record (never an exception, never a pass), and every
record a real probe returns comes through untouched (the same object), so no verdict of a
real submission changes."""
from __future__ import annotations

import numpy as np
import pytest

import reference
from grader.checks import hidden, probe
from grader.checks.records import MAX_DEPTH, MAX_ELEMENTS, MAX_ITEMS, MAX_STRING, admit

from .conftest import suites


class Sub(np.ndarray):
    """An ndarray subclass: its methods could be anything."""


def nest(n: int, leaf: object = 1.0) -> object:
    for _ in range(n):
        leaf = [leaf]
    return leaf


def deep_dict(n: int) -> dict:
    d: dict = {"x": 1.0}
    for _ in range(n):
        d = {"x": d}
    return d


FORGED = {
    "a list": [1.0],
    "a string": "record",
    "None": None,
    "a dict subclass": type("D", (dict,), {})(value=1.0),
    "an int key": {1: 2.0},
    "a tuple key": {"ok": 1.0, (1, 2): 2.0},
    "a nested int key": {"grads": [{"a": 1.0, 3: 2.0}]},
    "an object array": {"value": np.array([object()], dtype=object)},
    "a string array": {"value": np.array(["a", "b"])},
    "a complex array": {"value": np.array([1 + 2j])},
    "a structured array": {"value": np.zeros(2, dtype=[("a", "f8"), ("b", "i4")])},
    "an ndarray subclass": {"value": np.zeros(3).view(Sub)},
    "a matrix": {"value": np.matrix([[1.0]])},
    "a callable": {"value": print},
    "a lambda deep inside": {"steps": [{"grads": {"x": lambda: 1.0}}]},
    "a class": {"value": float},
    "bytes": {"value": b"\x00"},
    "a set": {"value": {1.0}},
    "an object": {"value": object()},
    "a complex scalar": {"value": np.complex128(1)},
    "huge nesting": {"value": nest(10_000)},
    "nesting past the bound": {"value": nest(MAX_DEPTH + 1)},
    "dicts past the bound": deep_dict(MAX_DEPTH + 1),
    "too many values": {"values": [0.0] * (MAX_ITEMS + 1)},
    "too many elements": {"a": np.zeros(MAX_ELEMENTS // 2 + 1, dtype=bool), "b": np.zeros(MAX_ELEMENTS // 2, dtype=bool)},
    "a long string": {"message": "x" * (MAX_STRING + 1)},
    "an error that is a string": {"error": "ValueError"},
    "an error without a message": {"error": {"type": "ValueError"}},
    "an error with a non-str type": {"error": {"type": 3, "message": "m"}},
    "an error_at that is not a str": {"error": {"type": "ValueError", "message": "m"}, "error_at": ["forward"]},
}


def is_protocol_record(r: object) -> bool:
    return (type(r) is dict and set(r) == {"error"} and r["error"]["type"] == "protocol"
            and isinstance(r["error"]["message"], str) and 0 < len(r["error"]["message"]) <= 300)


@pytest.mark.parametrize("name", list(FORGED))
def test_a_forged_record_becomes_a_protocol_error_record(name):
    good = {"value": np.ones(3), "grads": [np.zeros(2)], "error_at": "forward", "note": "text", "n": (1, 2.0, None)}
    out = admit([good, FORGED[name], good], 3)
    assert out[0] is good and out[2] is good
    assert is_protocol_record(out[1]), out[1]
    assert out[1]["error"]["message"].startswith("record 1 "), out[1]


@pytest.mark.parametrize("reply", [None, "records", {"records": []}, (dict(), dict()), [{}, {}, {}], [{}]],
                         ids=["None", "str", "dict", "tuple", "too many", "too few"])
def test_a_reply_that_is_not_a_list_of_n_records_gives_n_protocol_records(reply):
    out = admit(reply, 2)
    assert len(out) == 2 and all(map(is_protocol_record, out)) and out[0] is not out[1]


def test_the_message_says_where_the_record_is_wrong():
    (r,) = admit([{"steps": [{"grads": {"W": np.array([object()])}}]}], 1)
    assert r["error"]["message"] == "record 0 has an array of dtype object at ['steps'][0]['grads']['W']"


def test_data_within_the_bounds_is_admitted_as_it_is():
    records = [{"value": nest(MAX_DEPTH - 1)}, {"values": [0.0] * (MAX_ITEMS - 2)},
               {"a": np.zeros(MAX_ELEMENTS, dtype=bool)}, {"s": "x" * MAX_STRING},
               {"n": [np.float64(1.5), np.int64(2), np.bool_(True), np.float32(1)]},  # in-process records (audit)
               {"v": np.zeros((0, 3)), "f16": np.ones(2, dtype=np.float16), "u8": np.ones(2, dtype=np.uint8)},
               {"error": {"type": "ValueError", "message": "m"}, "error_at": "backward", "error_component": None},
               {}]
    out = admit(records, len(records))
    assert all(a is b for a, b in zip(out, records))


def real_tests() -> list:
    return [(a, t) for a, ts in suites().items() for t in ts]


@pytest.mark.parametrize("assignment,test", real_tests(), ids=lambda x: x if isinstance(x, str) else x["id"])
def test_the_reference_records_of_every_suite_test_are_admitted_untouched(assignment, test):
    ns = hidden._reference_notebook() if test["check"].startswith("mlp_") else reference
    for which in ("visible", "hidden"):
        specs = hidden.build_specs(test, which)
        records = [probe(ns, s) for s in specs]
        out = admit(records, len(specs))
        assert all(a is b for a, b in zip(out, records)), [r for r in out if "error" in r]


def one_test_per_kind() -> list:
    kinds: dict = {}
    for assignment, ts in suites().items():
        for t in ts:
            kinds.setdefault(t["check"], t)
    return list(kinds.values())


@pytest.mark.parametrize("test", one_test_per_kind(), ids=lambda t: t["check"])
@pytest.mark.parametrize("name", ["a list", "huge nesting", "an object array", "an error that is a string"])
def test_every_kind_judges_a_refused_record_as_a_protocol_error(test, name):
    specs = hidden.build_specs(test)
    r = hidden.judge(test, specs, admit([FORGED[name]] * len(specs), len(specs)))
    assert not r.passed and r.score == 0 and r.diagnosis == "protocol_error", (r.diagnosis, r.message)
