"""Check kind ``dual``: the forward-mode ``Dual`` class, value and dot of each operation
(with another Dual, a plain number on either side, the elementary functions).
"""
import math

import numpy as np

from .base import CaseResult, Kind, Result, _err, _fail, _need, _quiet, _seeds, combine, probe, register
from .compare import ATOL, ATOL_EXACT, H, RTOL, RTOL_EXACT, _error_case, classify
from .elementary import FUNCTION_NAMES, MATH_FUNCTIONS, _env


# Each operation: the expressions tried, as functions of (F, A, B, c, n): F the elementary
# functions, A and B duals (or floats), c a plain number, n a numeric exponent.
DUAL_OPS = {
    "add": (lambda F, A, B, c, n: A + B, lambda F, A, B, c, n: A + c),
    "radd": (lambda F, A, B, c, n: c + A,),
    "sub": (lambda F, A, B, c, n: A - B, lambda F, A, B, c, n: A - c),
    "rsub": (lambda F, A, B, c, n: c - A,),
    "mul": (lambda F, A, B, c, n: A * B, lambda F, A, B, c, n: A * c),
    "rmul": (lambda F, A, B, c, n: c * A,),
    "div": (lambda F, A, B, c, n: A / B, lambda F, A, B, c, n: A / c),
    "rdiv": (lambda F, A, B, c, n: c / A,),
    "pow": (lambda F, A, B, c, n: A ** n, lambda F, A, B, c, n: A ** 2),
    "neg": (lambda F, A, B, c, n: -A,),
}


for _f in FUNCTION_NAMES:
    DUAL_OPS[_f] = ((lambda f: lambda F, A, B, c, n: F[f](A))(_f), (lambda f: lambda F, A, B, c, n: F[f](abs(c)))(_f))


def dual_specs(ops=None, seed=0) -> list:
    rng = np.random.default_rng(seed)
    a = (float(rng.uniform(0.5, 2.0)), float(rng.normal()))  # positive: log and fractional powers
    b = (float(rng.choice([-1, 1]) * rng.uniform(0.5, 2.0)), float(rng.normal()))
    c = float(rng.choice([-1, 1]) * rng.uniform(0.5, 2.0))
    n = float(rng.choice([3.0, -2.0, 2.5]))
    return [{"check": "dual", "op": op, "case": i, "a": a, "b": b, "c": c, "n": n}
            for i, op in enumerate(ops or list(DUAL_OPS))]


def _probe_dual(ns, spec: dict) -> dict:
    Dual = _need(ns, "Dual")
    F = _env(ns)
    out = []
    for expr in DUAL_OPS[spec["op"]]:
        try:
            A, B = Dual(*spec["a"]), Dual(*spec["b"])
            r = expr(F, A, B, spec["c"], spec["n"])
            if hasattr(r, "val") and hasattr(r, "dot"):
                out.append({"val": float(r.val), "dot": float(r.dot)})
            else:
                out.append({"val": float(r)})
        except (Exception, SystemExit) as e:
            out.append({"error": _err(e)})
    return {"results": out}


def numeric_dual_expectation(spec) -> dict:
    """val from math; dot = d/dt of the expression along (a.dot, b.dot), by central differences."""
    (av, ad), (bv, bd), c, n = spec["a"], spec["b"], spec["c"], spec["n"]
    out = []
    for i, expr in enumerate(DUAL_OPS[spec["op"]]):
        g = lambda t: expr(MATH_FUNCTIONS, av + t * ad, bv + t * bd, c, n)
        with _quiet():
            dual = not (spec["op"] in FUNCTION_NAMES and i == 1)
            out.append({"val": g(0.0), "dot": (g(H) - g(-H)) / (2 * H)} if dual else {"val": g(0.0)})
    return {"results": out, "rtol": RTOL, "atol": ATOL * 10}


DUAL_TEXT = {"add": ("a + b", "a + c"), "radd": ("c + a",), "sub": ("a - b", "a - c"), "rsub": ("c - a",),
             "mul": ("a * b", "a * c"), "rmul": ("c * a",), "div": ("a / b", "a / c"), "rdiv": ("c / a",),
             "pow": ("a ** n", "a ** 2"), "neg": ("-a",)}


def judge_dual(spec, record, expected) -> CaseResult:
    op = spec["op"]
    texts = DUAL_TEXT.get(op, (f"{op}(a)", f"{op}(|c|) for a float"))
    where = f"Dual `{op}`"
    try:
        got = record["results"]
        if not isinstance(got, list) or len(got) != len(expected["results"]):
            return _fail("protocol_error", where, "results missing from the record.")
        for text, g, w in zip(texts, got, expected["results"]):
            w_ = f"{where}: {text}"
            if not isinstance(g, dict):
                return _fail("protocol_error", w_, "malformed result.")
            if "error" in g:
                return _error_case({"error": g["error"]}, w_)
            val = g.get("val")
            if not isinstance(val, float) or not math.isfinite(val):
                return _fail("non_finite" if isinstance(val, float) else "protocol_error", w_, "value is not a finite number.")
            tol = expected["atol"] * (1 + abs(w["val"]))
            if abs(val - w["val"]) > tol + expected["rtol"] * abs(w["val"]):
                return _fail("forward_wrong", w_, f"value: expected {w['val']:.6g}, got {val:.6g}.",
                             {"expected": w["val"], "got": val})
            if "dot" not in w:
                continue
            dot = g.get("dot")
            if not isinstance(dot, float):
                return _fail("wrong_gradient", w_, "should return a Dual (with .val and .dot).")
            tol = expected["atol"] * (1 + abs(w["dot"]))
            if not math.isfinite(dot) or abs(dot - w["dot"]) > tol + expected["rtol"] * abs(w["dot"]):
                code, what = classify(np.array([dot]), np.array([w["dot"]]), expected["rtol"], tol)
                return _fail(code, w_, f"dot {what}: expected {w['dot']:.6g}, got {dot:.6g}.",
                             {"expected": w["dot"], "got": dot})
        return CaseResult(True)
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_dual(ns, ops=None, seed=0, test_id=None) -> Result:
    """``check_dual(ns, ops=["add", "exp"], seed=0)``: value and dot of each operation."""
    with _quiet():
        verdicts = [judge_dual(s, probe(ns, s), numeric_dual_expectation(s)) for s in dual_specs(ops, seed)]
    return combine(test_id or "dual", verdicts)


def dual_suite_specs(test: dict, params: dict, ns=None, classes=None) -> list:
    return [s for seed in _seeds(params) for s in dual_specs(params.get("ops"), seed)]


def numeric_dual_case(ns, spec: dict) -> CaseResult:
    return judge_dual(spec, probe(ns, spec), numeric_dual_expectation(spec))


def dual_exact(spec: dict, rec: dict) -> dict:
    return {"results": rec["results"], "rtol": RTOL_EXACT, "atol": ATOL_EXACT}


register(Kind("dual", probe=_probe_dual, judge=judge_dual, specs=dual_suite_specs,
              numeric_case=numeric_dual_case, exact=dual_exact))
