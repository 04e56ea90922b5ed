"""The forward_mode corpus (tests/corpus/forward_mode) against the hidden suites.

Each buggy variant (a file with ``EXPECT``) is graded by every hidden test of its assignment:
its own test(s) score ``EXPECT["score"]`` (0 unless the bug is right in some regime), every
other test full marks (each bug charged once), and its own test's record names the unit
(``details["component"]`` and the message) and the misconception (``diagnosis``). The visible
test of the unit (numeric expectations) agrees. A variant without ``EXPECT`` is a correct
student written differently: full marks everywhere. The reference earns full marks over many
seeds of every dual and tape test.
"""
from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import pytest

import reference

from grader.checks import hidden
from grader.checks import public as P

from .conftest import suites

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from corpus import load_variant, read_expect  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "forward_mode"
FILES = sorted(p for p in CORPUS.glob("*.py") if not p.name.startswith("_"))
SUITES = suites()


def _notebook(path):
    """(ns, EXPECT) as in a notebook: the reference's derivative/gradient_fwd/gradient_rev are
    defined in the variant's namespace (so they build the variant's Dual/Var), unless it
    defines its own."""
    ns, expect = load_variant(path)
    own = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
    for name in ("derivative", "gradient_fwd", "gradient_rev"):
        if name not in own:
            exec(compile(inspect.getsource(getattr(reference, name)), "<given>", "exec"), ns)
    return ns, expect


def _tests(expect: dict | None) -> list:
    return SUITES[(expect or {}).get("assignment", "forward_mode")]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_variant_is_charged_once_on_its_own_test(path):
    ns, expect = _notebook(path)
    own = set(expect.get("tests") or [expect["test"]]) if expect else set()
    if expect and expect.get("assignment") == "scalar_backprop":
        tests = [t for t in _tests(expect) if t["id"] in own]  # the by-hand function alone
    else:
        tests = _tests(expect)
    results = {t["id"]: hidden.run_hidden(ns, t) for t in tests}
    for tid, r in results.items():
        if tid in own:
            assert r.score == pytest.approx(expect.get("score", 0.0)), (tid, r.score, r.message)
        else:
            assert r.passed and r.score == 1.0, (path.stem, tid, r.message)
    if not expect:
        return
    first = results[expect.get("test") or sorted(own)[0]]
    assert first.diagnosis == expect["diagnosis"], first.message
    assert first.details.get("component") == expect["component"], first.details
    assert expect["component"] in first.message
    visible = P.run_public(ns, next(t for t in tests if t["id"] == (expect.get("test") or sorted(own)[0])))
    assert not visible.passed and visible.diagnosis == expect["diagnosis"], visible.message


def test_corpus_names_every_realistic_mistake_of_the_brief():
    names = {p.stem for p in FILES}
    assert {"dual_add_mutates_left", "dual_pow_through_exp_log", "dual_dot_always_zero", "var_backward_noop",
            "var_backward_overwrites", "dual_mul_one_term", "dual_rsub_reversed", "dual_rtruediv_reversed",
            "dual_sin_no_chain_factor", "dual_exp_no_chain_factor"} <= names
    assert all(read_expect(p) is None for p in FILES if p.stem.startswith("correct_"))


@pytest.mark.parametrize("seed", range(0, 400, 7))
def test_reference_full_marks_over_many_seeds(ref_ns, seed):
    for t in SUITES["forward_mode"]:
        if t["check"] in ("dual", "tape"):
            ops = t["hidden"]["ops"]
            fn = P.check_dual if t["check"] == "dual" else P.check_tape
            r = fn(ref_ns, ops=ops, seed=seed)
            assert r.passed, (t["id"], seed, r.message)
            r = hidden.run_hidden(ref_ns, {**t, "hidden": {"seeds": [seed], "ops": ops}})
            assert r.passed, (t["id"], seed, r.message)


def test_reference_full_marks_on_every_suite_test(ref_ns):
    for assignment in ("forward_mode", "scalar_backprop"):
        for t in SUITES[assignment]:
            if t["check"] in ("dual", "tape", "function"):
                assert hidden.run_hidden(ref_ns, t).passed, t["id"]
                assert P.run_public(ref_ns, t).passed, t["id"]


def test_a_dual_probe_that_fails_before_any_operation_names_the_error(ref_ns):
    """No ``Dual`` in the notebook: the record is the error itself, reported as the student's
    error (not as a record the grader could not judge)."""
    ns = {k: v for k, v in ref_ns.items() if k != "Dual"}
    test = next(t for t in suites()["forward_mode"] if t["id"] == "dual_mul")
    r = hidden.run_hidden(ns, test)
    assert not r.passed and r.diagnosis != "protocol_error", r.message
    assert "Dual" in r.message and "could not be judged" not in r.message
