"""Check kind ``function``: plain functions (logistic_ls_grads, derivative, gradient_fwd,
gradient_rev, unbroadcast) called with a suite case's keyword arguments.
"""
import numpy as np

from .base import CaseResult, Kind, Result, _arr, _err, _fail, _need, _quiet, _seeds, combine, probe, register
from .compare import (ATOL, ATOL_EXACT, RTOL, RTOL_EXACT, _central, _close, _describe, _error_case, _errors,
                      _valid, classify)
from .elementary import MATH_FUNCTIONS, _env, _lambda, _math_sigmoid


def _materialise(v, rng):
    """Suite case values: {random = [dims]} -> seeded normal array, {tuple = [...]} stays a marker."""
    if isinstance(v, dict) and "random" in v:
        return rng.normal(size=tuple(int(i) for i in v["random"]))
    if isinstance(v, (list, tuple)) and not isinstance(v, str):
        return [_materialise(x, rng) for x in v]
    return v


def _plain(v):
    if isinstance(v, dict) and "tuple" in v:
        return tuple(int(i) for i in v["tuple"])
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def function_specs(target, cases=None, seed=0) -> list:
    """One spec per case (a dict of keyword arguments); default cases for logistic_ls_grads."""
    rng = np.random.default_rng(seed)
    if cases is None:
        if target != "logistic_ls_grads":
            raise ValueError(f"function check of {target!r} needs cases")
        cases = [{"w": float(rng.normal(0, 1.5)), "b": float(rng.normal()), "x": float(rng.normal(0, 1.5)),
                  "t": float(rng.integers(0, 2)), "lam": float(rng.uniform(0.01, 1))} for _ in range(3)]
    return [{"check": "function", "target": target, "case": i,
             "kwargs": {k: _materialise(v, rng) for k, v in dict(c).items()}} for i, c in enumerate(cases)]


def _out(x):
    """A returned value as data: a list for tuples/lists of numbers, else one numeric array."""
    if isinstance(x, (tuple, list)) and not (x and isinstance(x[0], (int, float)) and len(x) > 3 and False):
        return {"seq": [_arr(_scalar(v)) for v in x]}
    return {"one": _arr(_scalar(x))}


def _scalar(v):
    """Dual/Var results as their value; numbers and arrays unchanged."""
    for attr in ("val", "value"):
        if hasattr(v, attr) and not isinstance(v, np.ndarray):
            return getattr(v, attr)
    return v


def _probe_function(ns, spec: dict) -> dict:
    fn = _need(ns, spec["target"])
    kwargs = {}
    for k, v in spec["kwargs"].items():
        kwargs[k] = _lambda(v, _env(ns)) if isinstance(v, str) and v.lstrip().startswith("lambda") else _plain(v)
        if isinstance(kwargs[k], list):
            kwargs[k] = [_plain(x) for x in kwargs[k]]
    try:
        return {"result": _out(fn(**kwargs))}
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": "call"}


def _logistic_formula(w, b, x, t, lam):
    y = _math_sigmoid(w * x + b)
    return 0.5 * (y - t) ** 2 + lam * 0.5 * w ** 2


def numeric_function_expectation(spec) -> dict:
    """The expected result from stated formulas and central differences."""
    target, kw = spec["target"], {k: _plain(v) for k, v in spec["kwargs"].items()}
    if target == "logistic_ls_grads":
        f = lambda w, b: _logistic_formula(w, b, kw["x"], kw["t"], kw["lam"])
        xs = [float(kw["w"]), float(kw["b"])]
        return {"result": {"seq": [np.asarray(f(*xs)), np.asarray(_central(f, xs, 0)), np.asarray(_central(f, xs, 1))]},
                "rtol": RTOL, "atol": ATOL}
    if target in ("derivative", "gradient_fwd", "gradient_rev"):
        f = _lambda(kw["f"], MATH_FUNCTIONS)
        if target == "derivative":
            return {"result": {"one": np.asarray(_central(f, [float(kw["x"])], 0))}, "rtol": RTOL, "atol": ATOL}
        xs = [float(x) for x in kw["xs"]]
        return {"result": {"one": np.array([_central(f, xs, i) for i in range(len(xs))])}, "rtol": RTOL, "atol": ATOL}
    if target == "unbroadcast":  # the adjoint of broadcasting, element by element
        g, shape = np.asarray(kw["grad"], dtype=float), tuple(kw["shape"])
        want = np.zeros(shape)
        for j in np.ndindex(shape):
            e = np.zeros(shape)
            e[j] = 1.0
            want[j] = np.sum(g * np.broadcast_to(e, g.shape))
        return {"result": {"one": want}, "rtol": RTOL_EXACT, "atol": ATOL_EXACT}
    raise ValueError(f"no numeric expectation for {target!r}")


OUTPUT_NAMES = {"logistic_ls_grads": ("L_reg", "w_bar", "b_bar")}


def judge_function(spec, record, expected) -> CaseResult:
    target = spec["target"]
    where = f"{target} (case {spec.get('case', 0) + 1})"
    if not isinstance(record, dict):
        return _fail("protocol_error", where, "the probe record is not a dict.")
    try:
        if "error" in record:
            return _error_case(record, where)
        got, want = record.get("result"), expected["result"]
        rtol, atol = expected["rtol"], expected["atol"]
        if not isinstance(got, dict):
            return _fail("protocol_error", where, "result missing from the record.")
        if "seq" in want:
            g = got.get("seq")
            if not isinstance(g, list) or len(g) != len(want["seq"]):
                return _fail("forward_wrong", where, f"should return {len(want['seq'])} values.")
            pairs = list(zip(g, want["seq"]))
        else:
            g = got.get("one")
            pairs = [(g, want["one"])]
        names = OUTPUT_NAMES.get(target, ("result",) * len(pairs))
        for k, (a, w) in enumerate(pairs):
            w = np.asarray(w, dtype=float)
            bad = _valid(a)
            if bad:
                return _fail("exception", where, f"{names[k]} {bad}.")
            if a.size == w.size and a.shape != w.shape and w.ndim == 0:
                a = a.reshape(())
            if a.shape != w.shape:
                return _fail("grad_shape", where, f"{names[k]} has shape {a.shape}, expected {w.shape}.",
                             {"expected_shape": list(w.shape), "got_shape": list(a.shape)})
            if np.all(np.isfinite(w)) and not np.all(np.isfinite(a)):
                return _fail("non_finite", where, f"{names[k]} contains NaN or inf.")
            tol = atol * (1 + np.max(np.abs(w), initial=0))
            if not _close(a, w, rtol, tol):
                err = _errors(a, w)
                if target == "logistic_ls_grads" and k == 0:
                    return _fail("forward_wrong", where, f"L_reg wrong: {_describe(err)}.", err)
                code, what = classify(a.astype(float), w, rtol, tol)
                return _fail(code, where, f"{names[k]} {what}: {_describe(err)}.", err)
        return CaseResult(True)
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_function(ns, target, cases=None, seed=0, test_id=None) -> Result:
    """``check_function(ns, "derivative", cases=[{"f": "lambda x: x * x", "x": 3.0}])``."""
    specs = function_specs(target, cases, seed)
    with _quiet():
        verdicts = [judge_function(s, probe(ns, s), numeric_function_expectation(s)) for s in specs]
    return combine(test_id or target, verdicts)


def function_suite_specs(test: dict, params: dict, ns=None, classes=None) -> list:
    """Cases are fixed data: only the first seed, unless the test lists ``seeds``."""
    seeds = _seeds(params)
    return [s for seed in (seeds if "seeds" in params else seeds[:1])
            for s in function_specs(test.get("target"), params.get("cases"), seed)]


def numeric_function_case(ns, spec: dict) -> CaseResult:
    return judge_function(spec, probe(ns, spec), numeric_function_expectation(spec))


def function_exact(spec: dict, rec: dict) -> dict:
    return {**rec, "rtol": RTOL_EXACT, "atol": ATOL_EXACT}


register(Kind("function", probe=_probe_function, judge=judge_function, specs=function_suite_specs,
              numeric_case=numeric_function_case, exact=function_exact))
