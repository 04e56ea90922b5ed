"""Malformed records forged from inside the child get a clear failing verdict, not a crash.

A notebook holding the correct solution rebinds the harness's entry points (every dict the
garbage collector finds that maps "probe_all" to a function) to ones that answer every test
with records the parent must refuse: nested past the bound, not a dict, an "error" that is
not an error. The reply itself is well formed (the harness's shape, the right number of
records, within the codec's limits), so only ``records.admit`` stands between those records
and the judges. Real notebooks, real sandbox, one real ``backprop grade`` batch.
"""
from __future__ import annotations

import json
import os

import pytest

from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.runner import Limits

ASSIGNMENT = "tensor_edf"
ISOLATION = os.environ.get("BACKPROP_ISOLATION") or None

FORGE = '''
import gc


def _nest(n):
    x = [1.0]
    for _ in range(n):
        x = [x]
    return x


_FORGED = [{"value": _nest(30)}, "a record that is a string", {"error": "not an error", "value": [1.0]},
           {"grads": [{"W": _nest(20)}], "value": [1.0]}]


def probe_all(ns, specs):
    return {"records": [_FORGED[i % len(_FORGED)] for i in range(len(specs))], "evidence": []}


def probe_one(ns, spec):
    return {"records": [_FORGED[0]], "evidence": []}


for _d in gc.get_objects():
    if type(_d) is dict and _d is not globals() and callable(_d.get("probe_all")):
        _d["probe_all"], _d["probe_one"] = probe_all, probe_one
'''


@pytest.fixture(scope="module")
def graded(course, submitted_nb, tmp_path_factory):
    root = tmp_path_factory.mktemp("forged-records")
    cls = root / "class"
    sample.write(sample.add_cell(submitted_nb, FORGE, after="mse-solution"), cls / "forger.ipynb")
    sample.write(submitted_nb, cls / "honest.ipynb")
    opts = Options(limits=Limits(timeout=5.0, memory_bytes=1 << 30), budget=60.0)
    grade(Request(path=cls, assignment=ASSIGNMENT, course=course, out=root / "out", workers=2,
                  options=opts, nbgrader=False, reports=False, isolation=ISOLATION))
    return {r["student"]: r for r in json.loads((root / "out" / "results.json").read_text())}


def test_forged_records_fail_every_test_as_a_protocol_error(graded):
    rec = graded["forger"]
    # graded to the end (not "error": the batch never failed); a protocol error makes the
    # submission's status "crashed", as for any reply the grader could not read back
    assert rec["status"] == "crashed", rec["notes"]
    forging = [c for c in rec["cells"] if c["id"].startswith("added-")]
    assert forging and forging[0]["status"] == "ok", rec["cells"]  # the attack ran
    assert rec["tests"] and rec["total"] == 0
    for t in rec["tests"]:
        r = t["result"]
        assert t["points"] == 0 and not r["passed"] and r["score"] == 0, t
        assert r["diagnosis"] == "protocol_error", (t["id"], r["diagnosis"], r["message"])
        assert "could not accept what the probe returned: record 0 is nested more than 16 deep" in r["message"], \
            (t["id"], r["message"])


def test_the_forger_is_flagged_and_honest_work_in_the_same_batch_is_graded_in_full(graded):
    assert any(f.startswith("needs review: ") for f in graded["forger"]["flags"]), graded["forger"]["flags"]
    honest = graded["honest"]
    assert honest["total"] == honest["max"] > 0 and not honest["flags"], honest["flags"]
