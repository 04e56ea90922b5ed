"""Tolerances and comparisons shared by the kinds' judges: closeness, error summaries,
the most specific diagnosis of a wrong gradient (``classify``), failing cases for probes
that raised, and the central difference every numeric expectation uses.

Numeric gradients, float64 throughout
-------------------------------------
* Inputs are drawn from per-class domains away from kinks and singularities: ReLU
  inputs satisfy |x| >= 0.1, Log inputs lie in [0.5, 3], Exp inputs in [-2, 2];
  upstream grads are random normals (never ones), 0-d upstreams are +-[1.3, 2.7].
* Central differences with step H = 1e-6. Truncation error is H^2/6 * |f'''| <= 3e-12
  on these domains (Log at 0.5 has f''' = 16, the worst case); rounding error is about
  eps * M / H = 2.2e-10 * M, M the magnitude of the numbers in the computation.
* Fast path (torch's gradcheck "fast mode"): one random projection per case. With a
  random direction u and the random upstream v, v^T J u from one central difference
  (2 forward evaluations) is compared with sum_i <grad_i, u_i> from the student's
  backward. The per-element Jacobian (2 evaluations per operand element) is computed
  only when that fails, to localise the worst element and to diagnose.
* Tolerance: |got - want| <= RTOL * S + ATOL * (1 + M). RTOL = 1e-5, ATOL = 1e-7,
  S = |want| per element (for a projection: sum_j |v_j (J u)_j|, so cancellation in
  the projected sum cannot tighten it), M = sum|v| * (max|f| + max|x|) for a
  component, max |node value| for a graph. The noise bound above is >= 400x below
  this; every classic bug (sign, factor, missing term, ignored upstream, transposed
  matmul) is an O(|grad|) error. Measured over 300 seeds x 13 classes: the reference's
  worst projection error is 7e-4 of the tolerance; the smallest error of a wrong
  gradient in the mutation corpus is 120x the tolerance. No false failure of the
  reference or the correct corpus variants over 1000 seeds per class, 500 seeds of
  every suite.toml component test (including scale-1000 cases) and 250 per graph.
* Comparisons with the reference (hidden, exact) use RTOL_EXACT = 1e-6,
  ATOL_EXACT = 1e-8 * (1 + max|want|): students' correct but differently written
  formulas agree with the reference to ~1e-13.
* A random projection misses a wrong gradient only if the error is orthogonal to u:
  with Gaussian u the chance that |<e, u>| falls below 1e-5 of its typical size is
  about 1e-5 per case, and the deterministic checks (shape, accumulation, mutation,
  forward) do not depend on it.
"""
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .base import _FP_IGNORED, MAX_ELEMENTS, CaseResult, _fail, _jsonable, _num, _quiet
from .types import Record


H = 1e-6


RTOL, ATOL = 1e-5, 1e-7


RTOL_EXACT, ATOL_EXACT = 1e-6, 1e-8


FORWARD_RTOL, FORWARD_ATOL = 1e-6, 1e-9


def _valid(a: Any, shape: tuple | None = None) -> str | None:
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


def broadcasts_to(shape: tuple, out_shape: tuple) -> bool:
    """Whether NumPy broadcast an operand of ``shape`` up to ``out_shape`` (a bias (O,) in
    (N, O)), as opposed to a reduction whose value is smaller than its operand."""
    try:
        return tuple(np.broadcast_shapes(tuple(shape), tuple(out_shape))) == tuple(out_shape)
    except ValueError:
        return False


def _close(got: np.ndarray, want: np.ndarray, rtol: float, atol: float | np.ndarray) -> bool:
    # errstate alone silences NumPy's floating-point warnings; _quiet's catch_warnings
    # costs more than the comparison, and judges call this thousands of times: under
    # _quiet (every judge) even errstate is skipped, the errors are ignored already
    if _FP_IGNORED.get():
        return bool(np.all(np.abs(got - want) <= atol + rtol * np.abs(want)))
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(got - want) <= atol + rtol * np.abs(want)))


def _errors(got: Any, want: Any) -> dict[str, Any]:
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


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _describe(err: dict) -> str:
    idx = tuple(err["worst_index"])
    at = f" at index {idx}" if idx else ""
    return (f"expected {_fmt(err['expected_at_worst'])}, got {_fmt(err['got_at_worst'])}{at} "
            f"(max abs error {_fmt(err['max_abs_err'])}, max rel error {_fmt(err['max_rel_err'])})")


def classify(got: np.ndarray, want: np.ndarray, rtol: float, atol: float | np.ndarray, want_ones: np.ndarray | None = None,
             is_matmul: bool = False) -> tuple[str, str]:
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


def _error_case(rec: Record, where: str, component: str | None = None, broadcast: bool = False) -> CaseResult:
    """A failing case for a probe that raised; ``details["component"]`` names the class at fault
    when it is known (for a missing name, the name itself), so reports can place it."""
    err = rec.get("error")
    if not isinstance(err, dict):
        return _fail("protocol_error", where, "the probe record is malformed.")
    etype, msg = str(err.get("type", "")), str(err.get("message", ""))[:200]
    stage = str(rec.get("error_at", ""))
    at = {"component": component} if component else {}
    if etype == "protocol":  # a record the parent refused (``records.admit``) or an unknown check
        return _fail("protocol_error", where, f"the grader could not accept what the probe returned: {msg}.")
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

    def __init__(self) -> None:
        self.n = 0


def _central(f: Callable, xs: list, i: int) -> Any:
    """d f / d xs[i] by a central difference with step H."""
    xp, xm = list(xs), list(xs)
    xp[i] += H
    xm[i] -= H
    return (f(*xp) - f(*xm)) / (2 * H)


def exact_atol(arrays: Iterable[Any]) -> float:
    """Absolute tolerance against the reference's exact values: ATOL_EXACT * (1 + max|want|)."""
    m = max((float(np.max(np.abs(np.asarray(a, dtype=float)), initial=0)) for a in arrays), default=0.0)
    return ATOL_EXACT * (1 + m)
