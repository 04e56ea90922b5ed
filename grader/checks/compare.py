"""Tolerances and comparisons shared by the kinds' judges: closeness, error summaries,
the most specific diagnosis of a wrong gradient (``classify``), failing cases for probes
that raised, and the central difference every numeric expectation uses.

Tolerances and their derivation: see ``public.py``'s docstring and docs/ARCHITECTURE.md.
"""
import numpy as np

from .base import MAX_ELEMENTS, _fail, _jsonable, _num, _quiet


H = 1e-6


RTOL, ATOL = 1e-5, 1e-7


RTOL_EXACT, ATOL_EXACT = 1e-6, 1e-8


FORWARD_RTOL, FORWARD_ATOL = 1e-6, 1e-9


def _valid(a, shape=None):
    """Reason why ``a`` is not an acceptable numeric array (None when it is)."""
    if not isinstance(a, np.ndarray):
        return "is not a NumPy array of numbers"
    if a.dtype.kind not in "biuf" or a.dtype.hasobject:
        return f"has dtype {a.dtype}, not a number type"
    if a.size > MAX_ELEMENTS:
        return "is too large"
    if shape is not None and a.shape != tuple(shape):
        return f"has shape {a.shape}, expected {tuple(shape)}"
    return None


def _close(got, want, rtol, atol):
    # errstate alone silences NumPy's floating-point warnings; _quiet's catch_warnings
    # costs more than the comparison, and judges call this thousands of times
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(got - want) <= atol + rtol * np.abs(want)))


def _errors(got, want) -> dict:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    with _quiet():  # nanmax of an all-NaN diff warns through `warnings`, not errstate
        diff = np.abs(got - want)
        rel = diff / np.maximum(np.abs(want), 1e-12)
        max_abs = _num(np.nanmax(diff)) if diff.size else 0.0
        max_rel = _num(np.nanmax(rel)) if rel.size else 0.0
    flat = int(np.nanargmax(diff)) if diff.size and not np.all(np.isnan(diff)) else 0
    idx = tuple(int(i) for i in np.unravel_index(flat, diff.shape)) if diff.ndim else ()
    return {"max_abs_err": max_abs, "max_rel_err": max_rel,
            "worst_index": list(idx), "expected_at_worst": _num(want[idx]) if want.size else None,
            "got_at_worst": _num(got[idx]) if got.size else None,
            "expected": _jsonable(want), "got": _jsonable(got)}


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _describe(err):
    idx = tuple(err["worst_index"])
    at = f" at index {idx}" if idx else ""
    return (f"expected {_fmt(err['expected_at_worst'])}, got {_fmt(err['got_at_worst'])}{at} "
            f"(max abs error {_fmt(err['max_abs_err'])}, max rel error {_fmt(err['max_rel_err'])})")


def classify(got, want, rtol, atol, want_ones=None, is_matmul=False):
    """The most specific diagnosis for a wrong gradient contribution (got != want)."""
    if want_ones is not None and not _close(want_ones, want, rtol, atol) and _close(got, want_ones, rtol, atol):
        return "upstream_ignored", "computed as if the upstream gradient self.grad were ones"
    if np.any(want != 0) and _close(got, -want, rtol, atol):
        return "sign_error", "has the opposite sign of the correct gradient"
    denom = float(np.sum(want * want))
    if denom > 0:
        r = float(np.sum(got * want)) / denom
        # one number is always a multiple of another: then only a "round" factor counts
        nice = np.size(want) > 1 or any(abs(abs(q) - f) < 1e-9 for q in (r, 1 / r if r else 0) for f in (2.0, 4.0))
        if nice and abs(r) > 1e-9 and abs(r - 1) > 1e-3 and _close(got, r * want, rtol, atol):
            return "wrong_factor", f"is the correct gradient times {r:.4g}"
    if is_matmul:
        return "matmul_transposed", "does not match x_bar = v_bar @ W.T / W_bar = x.T @ v_bar"
    return "wrong_gradient", "is wrong"


def _error_case(rec, where, component=None, broadcast=False):
    """A failing case for a probe that raised; ``details["component"]`` names the class at fault
    when it is known (for a missing name, the name itself), so reports can place it."""
    err = rec.get("error")
    if not isinstance(err, dict):
        return _fail("protocol_error", where, "the probe record is malformed.")
    etype, msg = str(err.get("type", "")), str(err.get("message", ""))[:200]
    stage = str(rec.get("error_at", ""))
    at = {"component": component} if component else {}
    if etype == "missing":
        return _fail("missing", where, f"`{msg}` is not defined.", {"missing": msg, "component": msg})
    if etype == "NotImplementedError":
        return _fail("not_implemented", where + (f" ({stage})" if stage in ("forward", "backward") else ""),
                     "raises NotImplementedError.", at)
    if stage == "backward" and etype == "ValueError":
        if component == "VDot" and ("mismatch" in msg or "align" in msg or "shape" in msg):
            return _fail("matmul_transposed", where, f"backward raised ValueError: {msg}.", at)
        if broadcast and "non-broadcastable output" in msg:  # += of an unsummed grad into a broadcast operand
            return _fail("bias_not_summed", where, f"backward raised ValueError: {msg}.", at)
    return _fail("exception", where + (f" ({stage})" if stage else ""), f"raised {etype}: {msg}", at)


class Counter:
    """Counts forward evaluations (for the benchmark)."""

    def __init__(self):
        self.n = 0


def _central(f, xs, i):
    """d f / d xs[i] by a central difference with step H."""
    xp, xm = list(xs), list(xs)
    xp[i] += H
    xm[i] -= H
    return (f(*xp) - f(*xm)) / (2 * H)


def exact_atol(arrays) -> float:
    """Absolute tolerance against the reference's exact values: ATOL_EXACT * (1 + max|want|)."""
    m = max((float(np.max(np.abs(np.asarray(a, dtype=float)), initial=0)) for a in arrays), default=0.0)
    return ATOL_EXACT * (1 + m)
