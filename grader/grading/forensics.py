"""The trusted judge of numerical differentiation (the parent's half of ``grader/checks/forensics.py``).

Evidence by construction, from the child (``record["forensics"]``, untrusted data, so it is
validated here): forward computations run while a backward runs, helpers evaluated at
shifted or complex inputs, ``f`` called without ``Dual``/``Var`` arguments. Any of it puts
the submission on the TA's list ("needs review: Sigmoid.backward calls forward (numerical
differentiation?)") and holds the affected test's points until a TA has looked, as a
harness that was tampered with does: the numbers may be right, but they are not the
student's derivation, and the issue asks for no silent points.

The precision fingerprint is the second signal: across a test's cases, how closely the
gradients agree with the reference's. Analytic code agrees to ~1e-16..1e-13; central
differences to ~1e-11..1e-7, in every case. It is reported beside the evidence and, alone,
flags a test for review with its points kept (it cannot see a complex step, and it is
never the sole reason to withhold points).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

FORENSICS_SOURCE = Path(__file__).resolve().parent.parent / "checks" / "forensics.py"
NUMERIC_BAND = (1e-12, 1e-5)   # worst relative error per case typical of finite differences
MIN_CASES = 3                  # the fingerprint speaks only over this many cases
_NAME = re.compile(r"[^A-Za-z0-9_ >.()-]")


def child_source() -> str:
    """``grader/checks/forensics_support.py``, ``forensics_numpy.py`` and ``forensics.py`` as a section of the child's
    ``backprop_checks`` (their names from ``base`` are defined earlier in the bundle)."""
    lines = []
    for path in (FORENSICS_SOURCE.with_name("forensics_support.py"), FORENSICS_SOURCE.with_name("forensics_numpy.py"),
                 FORENSICS_SOURCE):
        lines += path.read_text(encoding="utf-8").splitlines(keepends=True) + ["\n\n"]
    return "".join(line for line in lines if not line.startswith("from ."))


def _name(x) -> str:
    return _NAME.sub("?", str(x))[:60]


def _count(x) -> int:
    return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0 else 0


def _table(x) -> dict[str, int]:
    if not isinstance(x, dict):
        return {}
    return {_name(k): _count(v) for k, v in list(x.items())[:50] if _count(v)}


_LIBRARIES = {"np": "NumPy", "math": "math", "cmath": "cmath"}  # forensics_numpy's watched modules


def _library(helper: str) -> str | None:
    """``np`` for ``np.tanh`` (a student's helper is a plain name: it has no dot)."""
    lib = helper.partition(".")[0] if "." in helper else None
    return lib if lib in _LIBRARIES else None


def reasons(evidence) -> list[str]:
    """What a probe record's evidence says, in the TA's words (empty: nothing seen)."""
    if not isinstance(evidence, dict):
        return []
    out = []
    for cls, n in _table(evidence.get("backward_forward")).items():
        out.append(f"{cls}.backward calls forward (numerical differentiation?): {n} forward call(s) inside backward")
    loop, comps = _count(evidence.get("loop_forward")), _count(evidence.get("loop_components"))
    if loop > max(comps, 1):  # more than one forward pass inside Backward
        out.append(f"Backward calls forward (numerical differentiation?): {loop} forward call(s) "
                   f"for {comps} component(s)")
    for where, n in _table(evidence.get("perturbed")).items():
        cls, _, helper = where.partition(" -> ")
        how = f"a difference quotient in {_LIBRARIES[lib]} calls: " if (lib := _library(helper)) else ""
        out.append(f"{cls}.backward evaluates {helper} at shifted inputs ({how}numerical differentiation?)")
    for where in _table(evidence.get("rebound")):
        cls, _, method = where.rpartition(".")
        if method == "__getattribute__":
            out.append(f"{cls} defines its own __getattribute__ (its methods may not be the ones "
                       "instrumented; numerical differentiation?)")
        else:
            out.append(f"{where} was replaced while being graded (the function that ran was not the one "
                       "instrumented; numerical differentiation?)")
    for where, n in _table(evidence.get("complex")).items():
        cls, _, helper = where.partition(" -> ")
        if lib := _library(helper):  # forensics_numpy: the formula inline, no forward or helper call
            out.append(f"{cls}.backward calls {helper} with complex numbers (a complex step in "
                       f"{_LIBRARIES[lib]} calls: numerical differentiation?)")
        else:
            out.append(f"{where.replace(' -> ', '.backward calls ')} with complex numbers (complex-step differentiation?)")
    calls = evidence.get("f_calls")
    for name, kinds in (list(calls.items())[:10] if isinstance(calls, dict) else []):
        kinds = _table(kinds)
        if kinds.get("complex"):
            out.append(f"{_name(name)} calls f with complex numbers (complex-step differentiation?)")
        elif kinds.get("plain", 0) >= 2:
            out.append(f"{_name(name)} calls f {kinds['plain']} times with plain numbers instead of "
                       "Dual/Var (numerical differentiation?)")
    return out


def merge(evidences: list) -> dict:
    """One test's evidence: every case's counts added up (each validated first)."""
    total: dict = {"backward_forward": {}, "perturbed": {}, "complex": {}, "rebound": {}, "f_calls": {},
                   "loop_forward": 0, "loop_components": 0}
    for ev in evidences[:1000]:
        if not isinstance(ev, dict):
            continue
        for key in ("backward_forward", "perturbed", "complex", "rebound"):
            for k, n in _table(ev.get(key)).items():
                total[key][k] = total[key].get(k, 0) + n
        calls = ev.get("f_calls")
        for name, kinds in (list(calls.items())[:10] if isinstance(calls, dict) else []):
            mine = total["f_calls"].setdefault(_name(name), {})
            for k, n in _table(kinds).items():
                mine[k] = mine.get(k, 0) + n
        # a loop's forward calls are judged per Backward run against its own graph
        loop, comps = _count(ev.get("loop_forward")), _count(ev.get("loop_components"))
        if loop > max(comps, 1) and loop > total["loop_forward"]:
            total["loop_forward"], total["loop_components"] = loop, comps
    return total


def _rel_errors(got, want) -> float | None:
    """The worst relative error of ``got`` against ``want`` over the entries that are not tiny."""
    try:
        g, w = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    except (TypeError, ValueError):
        return None
    if g.shape != w.shape or w.size == 0 or not (np.all(np.isfinite(g)) and np.all(np.isfinite(w))):
        return None
    scale = float(np.max(np.abs(w)))
    keep = np.abs(w) > 1e-6 * scale
    if scale == 0 or not np.any(keep):
        return None
    return float(np.max(np.abs(g[keep] - w[keep]) / np.abs(w[keep])))


def _fingerprinted(spec: dict) -> bool:
    return (spec.get("check") == "component" and not spec.get("forward_only")) or (
        spec.get("check") == "function" and spec.get("target") in ("derivative", "gradient_fwd", "gradient_rev"))


def reference_expectation(spec: dict) -> dict:
    """The hidden expectation of ``spec`` (the judge's own, memoised)."""
    from grader.checks import hidden

    return hidden._memo(spec["check"], spec, lambda: hidden.exact_expectation(spec))


def case_error(spec: dict, record: dict, expected: dict) -> float | None:
    """The worst relative error of one case's derivatives against the reference's, or None."""
    if spec.get("check") == "component" and not spec.get("forward_only"):
        got, want = record.get("grads"), expected.get("grads")
        labels = set(spec.get("labels") or [])
        if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
            errs = [_rel_errors(g, w) for k, (g, w) in enumerate(zip(got, want)) if k not in labels]
            errs = [e for e in errs if e is not None]
            return max(errs) if errs else None
    if spec.get("check") == "function" and spec.get("target") in ("derivative", "gradient_fwd", "gradient_rev"):
        got, want = (record.get("result") or {}).get("one"), (expected.get("result") or {}).get("one")
        return None if got is None or want is None else _rel_errors(got, want)
    return None


def fingerprint(specs: list, records: list, expectation) -> dict | None:
    """The distribution of the cases' worst relative errors against the reference:
    ``{"cases", "median", "max", "numeric"}``; ``numeric`` when every case sits in the finite
    differences' band. ``expectation(spec)`` is the reference's expectation of a spec."""
    errs = []
    for spec, rec in zip(specs, records):
        if not isinstance(rec, dict) or "error" in rec or not _fingerprinted(spec):
            continue
        try:
            e = case_error(spec, rec, expectation(spec))
        except Exception:  # noqa: BLE001 - no expectation for this case: it says nothing
            e = None
        if e is not None:
            errs.append(e)
    if not errs:
        return None
    lo, hi = NUMERIC_BAND
    return {"cases": len(errs), "median": float(np.median(errs)), "max": max(errs),
            "numeric": len(errs) >= MIN_CASES and all(lo <= e <= hi for e in errs)}


def describe_fingerprint(fp: dict | None) -> str:
    if not fp:
        return "precision fingerprint: not available"
    kind = "typical of finite differences" if fp["numeric"] else "typical of analytic code" \
        if fp["max"] < NUMERIC_BAND[0] else "inconclusive"
    return (f"precision fingerprint: worst relative error against the reference {fp['max']:.0e} "
            f"(median {fp['median']:.0e} over {fp['cases']} cases), {kind}")


def examine(test: dict, specs: list, records: list, expectation) -> tuple[list[str], bool, dict | None]:
    """(review reasons, hold the test's points?, fingerprint) for one test's records.

    Pops ``"forensics"`` from every record (the judges see the records as before)."""
    found = reasons(merge([rec.pop("forensics", None) for rec in records if isinstance(rec, dict)]))
    fp = fingerprint(specs, records, expectation)
    if found:
        return [f"{r}; {describe_fingerprint(fp)}" for r in found[:5]], True, fp
    if fp and fp["numeric"]:
        return [f"{test.get('target', test['id'])}: gradients only as precise as finite differences "
                f"(numerical differentiation?); {describe_fingerprint(fp)}; points kept"], False, fp
    return [], False, fp
