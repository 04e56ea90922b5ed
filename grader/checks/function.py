"""Check kind ``function``: plain functions (logistic_ls_grads, derivative, gradient_fwd,
gradient_rev, unbroadcast) called with a suite case's keyword arguments.

``derivative``, ``gradient_fwd`` and ``gradient_rev`` are built on ``Dual`` and ``Var``; their
tests pass a harness stand-in for ``f`` (``f = {value = "lambda ...", grad = ["lambda ...", ...]}``)
that reads its arguments' ``val``/``dot`` (or ``value``) and returns a result of known value and
derivative made with the student's own constructor (for ``gradient_rev`` a ``Var`` whose
``backward()`` sets the known grads on the inputs), so no operator of the student's ``Dual``
or ``Var`` runs and only the function's own logic is judged. Without ``grad`` the stand-in
returns a plain number (derivative 0).
"""
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .base import DIAGNOSES, CaseResult, Kind, Result, _arr, _err, _fail, _need, _quiet, _seeds, combine, probe, register
from .compare import (ATOL, ATOL_EXACT, RTOL, RTOL_EXACT, _central, _close, _describe, _error_case, _errors,
                      _valid, classify)
from .elementary import MATH_FUNCTIONS, _env, _lambda, _math_sigmoid
from .types import FunctionRecord, FunctionSpec, Namespace


def _materialise(v: Any, rng: np.random.Generator) -> Any:
    """Suite case values: {random = [dims]} -> seeded normal array, {tuple = [...]} stays a marker."""
    if isinstance(v, dict) and "random" in v:
        return rng.normal(size=tuple(int(i) for i in v["random"]))
    if isinstance(v, (list, tuple)) and not isinstance(v, str):
        return [_materialise(x, rng) for x in v]
    return v


def _plain(v: Any) -> Any:
    if isinstance(v, dict) and "tuple" in v:
        return tuple(int(i) for i in v["tuple"])
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def function_specs(target: str, cases: list[dict] | None = None, seed: int = 0) -> list[FunctionSpec]:
    """One spec per case (a dict of keyword arguments); default cases for logistic_ls_grads."""
    rng = np.random.default_rng(seed)
    if cases is None:
        if target != "logistic_ls_grads":
            raise ValueError(f"function check of {target!r} needs cases")
        cases = [{"w": float(rng.normal(0, 1.5)), "b": float(rng.normal()), "x": float(rng.normal(0, 1.5)),
                  "t": float(rng.integers(0, 2)), "lam": float(rng.uniform(0.01, 1))} for _ in range(3)]
    return [{"check": "function", "target": target, "case": i,
             "kwargs": {k: _materialise(v, rng) for k, v in dict(c).items()}} for i, c in enumerate(cases)]


def _out(x: Any) -> dict[str, Any]:
    """A returned value as data: a list for tuples/lists of numbers, else one numeric array."""
    if isinstance(x, (tuple, list)) and not (x and isinstance(x[0], (int, float)) and len(x) > 3 and False):
        return {"seq": [_arr(_scalar(v)) for v in x]}
    return {"one": _arr(_scalar(x))}


def _scalar(v: Any) -> Any:
    """Dual/Var results as their value; numbers and arrays unchanged."""
    for attr in ("val", "value"):
        if hasattr(v, attr) and not isinstance(v, np.ndarray):
            return getattr(v, attr)
    return v


FUNCTION_DIAGNOSES = {
    "ad_returned_value": ("returned the value of f, not its derivative",
                          "The derivative is the output's dot (forward mode), or the inputs' grads after backward() "
                          "(reverse mode), not its val/value."),
    "ad_not_seeded": ("the derivative came out as zero",
                      "Seed the input: Dual(x, 1.0) for derivative, dot 1 for input i only in pass i of "
                      "gradient_fwd; for gradient_rev call backward() on f's output before reading the grads."),
    "ad_seeded_together": ("every input was seeded with dot 1 in the same pass",
                           "One pass per input: in pass i only input i has dot 1, every other input dot 0."),
    "ad_constant_output": ("a plain-number output was not handled",
                           "If f returns a plain number (not a Dual/Var), its derivative is 0."),
    "ad_result_wrong": ("the derivative is wrong",
                        "Call f on the seeded inputs and read the output's dot (forward mode) or the inputs' grads "
                        "after backward() (reverse mode); return one float, or an array of len(xs)."),
    "ad_bad_shape": ("the result has the wrong shape",
                     "derivative returns one float; gradient_fwd and gradient_rev return a NumPy array of length len(xs)."),
}
DIAGNOSES.update(FUNCTION_DIAGNOSES)

AD_FUNCTIONS = ("derivative", "gradient_fwd", "gradient_rev")


def _standin(ns: Namespace, target: str, desc: dict) -> Callable[..., Any]:
    """The harness's f for an AD function: known value and derivative, built with the student's
    constructor only (its attributes ``val``/``dot`` or ``value``/``grad``, as given)."""
    value = _lambda(desc["value"], MATH_FUNCTIONS)
    grads = [_lambda(g, MATH_FUNCTIONS) for g in desc["grad"]] if "grad" in desc else None
    if target == "gradient_rev":
        Var = _need(ns, "Var")

        def backward(self) -> None:
            for v, g in zip(*self.standin_grads):
                v.grad = g

        Out = type("StandInOutput", (Var,), {"backward": backward})

        def f(*vs: Any) -> Any:
            vals = [float(v.value) for v in vs]
            if grads is None:
                return value(*vals)
            out = Out(value(*vals))
            out.standin_grads = (list(vs), [float(g(*vals)) for g in grads])
            return out
        return f
    Dual = _need(ns, "Dual")

    def f(*ds: Any) -> Any:
        vals = [float(d.val) for d in ds]
        if grads is None:
            return value(*vals)
        return Dual(value(*vals), sum(float(g(*vals)) * float(d.dot) for g, d in zip(grads, ds)))
    return f


def _probe_function(ns: Namespace, spec: FunctionSpec) -> FunctionRecord:
    fn = _need(ns, spec["target"])
    kwargs = {}
    for k, v in spec["kwargs"].items():
        if isinstance(v, dict) and "value" in v:
            kwargs[k] = _standin(ns, spec["target"], v)
        else:
            kwargs[k] = _lambda(v, _env(ns)) if isinstance(v, str) and v.lstrip().startswith("lambda") else _plain(v)
        if isinstance(kwargs[k], list):
            kwargs[k] = [_plain(x) for x in kwargs[k]]
    try:
        return {"result": _out(fn(**kwargs))}
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": "call"}


def _logistic_formula(w: float, b: float, x: float, t: float, lam: float) -> float:
    y = _math_sigmoid(w * x + b)
    return 0.5 * (y - t) ** 2 + lam * 0.5 * w ** 2


def numeric_function_expectation(spec: FunctionSpec) -> dict:
    """The expected result from stated formulas and central differences."""
    target, kw = spec["target"], {k: _plain(v) for k, v in spec["kwargs"].items()}
    if target == "logistic_ls_grads":
        f = lambda w, b: _logistic_formula(w, b, kw["x"], kw["t"], kw["lam"])
        xs = [float(kw["w"]), float(kw["b"])]
        return {"result": {"seq": [np.asarray(f(*xs)), np.asarray(_central(f, xs, 0)), np.asarray(_central(f, xs, 1))]},
                "rtol": RTOL, "atol": ATOL}
    if target in AD_FUNCTIONS:
        xs = [float(kw["x"])] if target == "derivative" else [float(x) for x in kw["xs"]]
        f = kw["f"]
        if isinstance(f, dict):  # a stand-in: its stated derivative
            g = [_lambda(d, MATH_FUNCTIONS)(*xs) for d in f["grad"]] if "grad" in f else [0.0] * len(xs)
        else:
            f = _lambda(f, MATH_FUNCTIONS)
            g = [_central(f, xs, i) for i in range(len(xs))]
        want = np.asarray(g[0]) if target == "derivative" else np.array(g, dtype=float)
        return {"result": {"one": want}, "rtol": RTOL, "atol": ATOL}
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


FUNCTION_DIAGNOSES.update({
    "logistic_loss_wrong": ("L_reg is wrong",
                            "Compute the forward pass as stated: z = w*x + b, y = sigmoid(z), L = 0.5*(y - t)**2, "
                            "R = 0.5*w**2, L_reg = L + lam*R."),
    "logistic_regulariser": ("the regulariser's share of w_bar is missing or wrong",
                             "w feeds both z and R: w_bar = z_bar * x + R_bar * w, with R_bar = lam."),
    "logistic_sigmoid_derivative": ("the sigmoid's derivative is missing from z_bar",
                                    "z_bar = y_bar * sigmoid'(z) = y_bar * y * (1 - y)."),
})
DIAGNOSES.update(FUNCTION_DIAGNOSES)


def _logistic_cause(kw: dict, k: int, got: float, rtol: float, atol: float) -> str | None:
    """Which step of the bar-notation derivation a wrong w_bar (k=1) / b_bar (k=2) skipped."""
    w, b, x, t, lam = (float(kw[n]) for n in ("w", "b", "x", "t", "lam"))
    y = _math_sigmoid(w * x + b)
    z_bar, z_bar_plain = (y - t) * y * (1 - y), y - t
    near = lambda v: abs(got - v) <= atol * (1 + abs(v)) + rtol * abs(v)
    if k == 1:
        if any(near(v) for v in (z_bar * x, z_bar * x + w, z_bar * x - lam * w, z_bar * x + 0.5 * lam * w * w)):
            return "logistic_regulariser"
        if any(near(v) for v in (z_bar_plain * x + lam * w, z_bar_plain * x)):
            return "logistic_sigmoid_derivative"
    if k == 2:
        if near(z_bar_plain):
            return "logistic_sigmoid_derivative"
        if near(z_bar + lam * w):
            return "logistic_regulariser"
    return None


def _ad_where(spec: dict) -> str:
    kw, target = spec["kwargs"], spec["target"]
    f = kw.get("f")
    at = f"x = {kw['x']}" if target == "derivative" else f"xs = {list(kw.get('xs', []))}"
    if isinstance(f, dict):
        shown = f"f = {f['value']}" + (f" (gradient {', '.join(f['grad'])})" if "grad" in f else ", a plain number")
    else:
        shown = f"f = {f}"
    return f"{target} (case {spec.get('case', 0) + 1}: {shown}, at {at})"


def _ad_cause(spec: dict, got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str:
    """The most specific diagnosis for a wrong derivative/gradient of a stand-in f."""
    kw, target = spec["kwargs"], spec["target"]
    f = kw.get("f")
    close = lambda a, b: bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))
    if isinstance(f, dict) and "grad" not in f:
        return "ad_constant_output"
    if np.any(want != 0) and close(got, np.zeros_like(want)):
        return "ad_not_seeded"
    if isinstance(f, dict):
        xs = [float(kw["x"])] if target == "derivative" else [float(x) for x in kw["xs"]]
        value = float(_lambda(f["value"], MATH_FUNCTIONS)(*xs))
        if close(got, np.full_like(want, value)):
            return "ad_returned_value"
        if target == "gradient_fwd" and want.size > 1 and close(got, np.full_like(want, want.sum())):
            return "ad_seeded_together"
    return "ad_result_wrong"


def judge_function(spec: FunctionSpec, record: FunctionRecord, expected: dict) -> CaseResult:
    target = spec["target"]
    ad = target in AD_FUNCTIONS
    where = _ad_where(spec) if ad else f"{target} (case {spec.get('case', 0) + 1})"
    at = {"component": target}
    if not isinstance(record, dict):
        return _fail("protocol_error", where, "the probe record is not a dict.")
    try:
        if "error" in record:
            f = spec["kwargs"].get("f")
            if ad and isinstance(f, dict) and "grad" not in f:
                err = record.get("error") or {}
                return _fail("ad_constant_output", where, f"raised {err.get('type')}: {str(err.get('message'))[:200]} "
                             "when f returned a plain number.", at)
            return _error_case(record, where, component=target)
        got, want = record.get("result"), expected["result"]
        rtol, atol = expected["rtol"], expected["atol"]
        if not isinstance(got, dict):
            return _fail("protocol_error", where, "result missing from the record.")
        if "seq" in want:
            g = got.get("seq")
            if not isinstance(g, list) or len(g) != len(want["seq"]):
                return _fail("logistic_loss_wrong" if target == "logistic_ls_grads" else "exception", where,
                             f"should return {len(want['seq'])} values.", at)
            pairs = list(zip(g, want["seq"]))
        else:
            g = got.get("one")
            pairs = [(g, want["one"])]
        names = OUTPUT_NAMES.get(target, ("result",) * len(pairs))
        for k, (a, w) in enumerate(pairs):
            w = np.asarray(w, dtype=float)
            bad = _valid(a)
            if bad:
                return _fail("exception", where, f"{names[k]} {bad}.", at)
            if a.size == w.size and a.shape != w.shape and w.ndim == 0:
                a = a.reshape(())
            if a.shape != w.shape:
                return _fail("ad_bad_shape" if ad else "grad_shape", where,
                             f"{names[k]} has shape {a.shape}, expected {w.shape}.",
                             {**at, "expected_shape": list(w.shape), "got_shape": list(a.shape)})
            if np.all(np.isfinite(w)) and not np.all(np.isfinite(a)):
                return _fail("non_finite", where, f"{names[k]} contains NaN or inf.", at)
            tol = atol * (1 + np.max(np.abs(w), initial=0))
            if not _close(a, w, rtol, tol):
                err = {**at, **_errors(a, w)}
                if target == "logistic_ls_grads" and k == 0:
                    return _fail("logistic_loss_wrong", where, f"L_reg wrong: {_describe(err)}.", err)
                if ad:
                    return _fail(_ad_cause(spec, a.astype(float), w, rtol, tol), where,
                                 f"expected {np.round(w, 6).tolist()}, got {np.round(a.astype(float), 6).tolist()}.", err)
                code, what = classify(a.astype(float), w, rtol, tol)
                if target == "logistic_ls_grads" and a.size == 1:
                    code = _logistic_cause(spec["kwargs"], k, float(a), rtol, tol) or code
                return _fail(code, where, f"{names[k]} {what}: {_describe(err)}.", err)
        return CaseResult(True)
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_function(ns: Namespace, target: str, cases: list[dict] | None = None, seed: int = 0,
                   test_id: str | None = None) -> Result:
    """``check_function(ns, "derivative", cases=[{"f": "lambda x: x * x", "x": 3.0}])``."""
    specs = function_specs(target, cases, seed)
    with _quiet():
        verdicts = [judge_function(s, probe(ns, s), numeric_function_expectation(s)) for s in specs]
    return combine(test_id or target, verdicts)


def function_suite_specs(test: dict, params: dict, ns: Namespace = None,
                         classes: Sequence[str] | None = None) -> list[FunctionSpec]:
    """Cases are fixed data: only the first seed, unless the test lists ``seeds``."""
    seeds = _seeds(params)
    return [s for seed in (seeds if "seeds" in params else seeds[:1])
            for s in function_specs(test.get("target"), params.get("cases"), seed)]


def numeric_function_case(ns: Namespace, spec: FunctionSpec) -> CaseResult:
    return judge_function(spec, probe(ns, spec), numeric_function_expectation(spec))


def function_exact(spec: FunctionSpec, rec: FunctionRecord) -> dict:
    return {**rec, "rtol": RTOL_EXACT, "atol": ATOL_EXACT}


register(Kind("function", probe=_probe_function, judge=judge_function, specs=function_suite_specs,
              numeric_case=numeric_function_case, exact=function_exact))
