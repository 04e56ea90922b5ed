"""Untrusted records never crash a judge nor pass; Result is JSON; the bundle stands alone."""
from __future__ import annotations

import ast
import copy
import json
import types
from pathlib import Path

import numpy as np
import pytest

import reference
from grader.checks import hidden, public as P
from grader.checks.bundle import bundle

TESTS = {
    "component": {"id": "c", "check": "component", "target": "Add", "hidden": {"seed": 3, "shapes": [[[4, 3], [3]]]}},
    "backward_loop": {"id": "b", "check": "backward_loop", "target": "Backward", "hidden": {"seed": 3, "graphs": ["mlp2"]}},
    "function": {"id": "f", "check": "function", "target": "logistic_ls_grads", "hidden": {"seed": 3}},
    "dual": {"id": "d", "check": "dual", "target": "Dual", "hidden": {"seed": 3, "ops": ["mul", "exp"]}},
    "tape": {"id": "t", "check": "tape", "target": "Var", "hidden": {"seed": 3}},
}
JUNK = [None, "text", 7, True, [], {}, np.array(["a", "b"]), np.array([object()], dtype=object),
        np.array([np.nan, np.inf]), np.zeros((3, 3, 3)), np.array(1 + 2j), [[1, 2], [3]], {"error": 3}]


def honest(kind):
    test = TESTS[kind]
    specs = hidden.build_specs(test)
    return test, specs, [P.probe(reference, s) for s in specs]


@pytest.mark.parametrize("kind", list(TESTS))
def test_honest_records_pass(kind):
    test, specs, records = honest(kind)
    assert hidden.judge(test, specs, records).passed


@pytest.mark.parametrize("kind", list(TESTS))
@pytest.mark.parametrize("junk", range(len(JUNK)))
def test_junk_records_fail(kind, junk):
    test, specs, records = honest(kind)
    r = hidden.judge(test, specs, [JUNK[junk]] * len(specs))
    assert not r.passed and r.score == 0 and r.diagnosis is not None


def test_wrong_number_of_records():
    test, specs, records = honest("component")
    r = hidden.judge(test, specs, records[:-1])
    assert not r.passed and r.diagnosis == "protocol_error"
    assert not hidden.judge(test, specs, "not a list").passed


def _leaves(x, path=()):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _leaves(v, path + (i,))
    else:
        yield path


def _replace(x, path, value):
    x = copy.deepcopy(x)
    target = x
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return x


# Keys a judge deliberately ignores (diagnosis-only data, or not judged for this spec).
IGNORED = {"grads_ones", "upstream", "steps2", "truncated", "values"}  # "values": final snapshot, informational


@pytest.mark.parametrize("kind", list(TESTS))
def test_every_corrupted_leaf_fails_or_is_ignored_never_crashes(kind):
    test, specs, records = honest(kind)
    rng = np.random.default_rng(0)
    for i, (spec, rec) in enumerate(zip(specs, records)):
        paths = list(_leaves(rec))
        for j in rng.permutation(len(paths))[:25]:
            path = paths[j]
            for junk in (None, "x", np.array(["s"]), np.full(np.shape(_get(rec, path)) or (1,), np.nan),
                         np.zeros((2, 2, 2, 2))):
                bad = _replace(rec, path, junk)
                case = hidden.judge_case(test, spec, bad)  # must not raise
                if case.passed:
                    assert set(map(str, path)) & IGNORED or _is_labels(spec, path), (kind, path, junk)


def _get(x, path):
    for p in path:
        x = x[p]
    return x


def _is_labels(spec, path):
    """Grads of label operands and of label inputs are not judged."""
    labels = set(spec.get("labels") or [])
    if spec["check"] == "component":
        return path[0].startswith("grads") and len(path) > 1 and path[1] in labels
    if spec["check"] == "backward_loop":
        return "labels" in path
    return False


def test_huge_arrays_are_rejected():
    spec = P.component_specs("Sum", [[(3,)]], 0, )[0]
    rec = P.probe(reference, spec)
    rec["grads"] = [np.zeros(P.MAX_ELEMENTS + 1)]
    assert not hidden.judge_case({"id": "s"}, spec, rec).passed


def test_result_json_round_trip():
    r = P.check_backward(__import__("tests.checks.conftest", fromlist=["x"]).student_ns('''
def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    for c in reversed(components):
        c.backward()
'''), "mlp2")
    assert not r.passed and r.details["graph"]["nodes"]
    d = json.loads(json.dumps(r.to_json(), allow_nan=False))
    again = P.Result.from_json(d)
    assert again.to_json() == r.to_json()
    assert set(d) == {"test_id", "passed", "score", "message", "diagnosis", "details"}
    nan = P.Result("x", False, 0.0, "m", "non_finite", {"got": np.array([np.nan, 1.0]), "n": np.float32(2)})
    json.dumps(nan.to_json(), allow_nan=False)


def test_public_is_self_contained():
    text = bundle()  # every kind: what a release of an assignment using them all would ship
    tree = ast.parse(text)
    allowed = {"math", "warnings", "contextlib", "dataclasses", "numpy", "collections", "typing", "contextvars"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module.split(".")[0] in allowed, node.module
        elif isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] in allowed for a in node.names)
    # written as backprop_checks.py, it runs alone
    module = types.ModuleType("backprop_checks")  # as the grading child loads it: not in sys.modules
    exec(compile(text, "backprop_checks.py", "exec", dont_inherit=True), module.__dict__)
    ns = module.__dict__
    assert ns["check_component"](reference, "Sigmoid", shapes=[(4, 3)], seed=0).passed
    assert ns["check_backward"](reference, graph="x_times_x_plus_1", seed=0).passed


def test_diagnosis_codes_match_the_architecture_table():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md").read_text()
    table = doc[doc.index("## Diagnosis codes"):doc.index("Runner-level outcomes")]
    codes = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert codes == set(P.DIAGNOSES)
