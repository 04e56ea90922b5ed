"""Check kind ``tape``: the reverse-mode ``Var`` class on fixed test functions (shared
subexpressions, every elementary function), values, input grads, and backward() twice.
"""
import numpy as np

from .base import CaseResult, Kind, Result, _err, _fail, _need, _quiet, _seeds, combine, probe, register
from .compare import (ATOL, ATOL_EXACT, RTOL, RTOL_EXACT, _central, _close, _describe, _error_case, _errors,
                      classify)
from .elementary import MATH_FUNCTIONS, _env, _lambda


TAPE_FUNCTIONS = (
    "lambda x, y: (x * y) * (x * y) + x * x",
    "lambda x, y: (lambda s: s * sigmoid(s) - s / (1 + y * y) + (-s))(x * y + x)",
    "lambda x, y, z: exp(x - y) * tanh(z) + log(1 + z * z) - x / (2 + y * y)",
    "lambda x: (lambda u: u * u + sin(u) - cos(u) / 2)(x * x + 1)",
    "lambda x, y: 3 - x * y + x ** 2 - 2 * y",
)


def tape_specs(seed=0) -> list:
    rng = np.random.default_rng(seed)
    return [{"check": "tape", "case": i, "f": f, "xs": [float(v) for v in rng.uniform(-1.5, 1.5, f.count(",") + 1
                                                                                         if "lambda x, y, z" in f else
                                                                                         (2 if "lambda x, y" in f else 1))]}
            for i, f in enumerate(TAPE_FUNCTIONS)]


def _probe_tape(ns, spec: dict) -> dict:
    Var = _need(ns, "Var")
    f = _lambda(spec["f"], _env(ns))
    stage = "forward"
    try:
        vs = [Var(x) for x in spec["xs"]]
        out = f(*vs)
        rec = {"value": float(out.value)}
        stage = "backward"
        out.backward()
        rec["grads"] = [float(v.grad) for v in vs]
        stage = "backward2"
        out.backward()
        rec["grads2"] = [float(v.grad) for v in vs]
        return rec
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": stage}


def numeric_tape_expectation(spec) -> dict:
    f = _lambda(spec["f"], MATH_FUNCTIONS)
    xs = list(spec["xs"])
    g = [_central(f, xs, i) for i in range(len(xs))]
    return {"value": f(*xs), "grads": g, "grads2": g, "rtol": RTOL, "atol": ATOL * 10}


def judge_tape(spec, record, expected) -> CaseResult:
    where = f"Var (case {spec.get('case', 0) + 1}: f = {spec['f']})"
    try:
        if "error" in record:
            return _error_case(record, where + (f", {record.get('error_at')}" if record.get("error_at") else ""))
        rtol, atol = expected["rtol"], expected["atol"]
        val = record["value"]
        if not isinstance(val, float):
            return _fail("protocol_error", where, "value missing from the record.")
        if abs(val - expected["value"]) > atol * (1 + abs(expected["value"])) + rtol * abs(expected["value"]):
            return _fail("forward_wrong", where, f"value: expected {expected['value']:.6g}, got {val:.6g}.")
        want = np.array(expected["grads"], dtype=float)
        for key in ("grads", "grads2"):
            got = record.get(key)
            if not (isinstance(got, list) and len(got) == len(want) and all(isinstance(v, float) for v in got)):
                return _fail("protocol_error", where, f"{key} missing from the record.")
            got = np.array(got)
            tol = atol * (1 + np.max(np.abs(want)))
            if not _close(got, want, rtol, tol):
                err = _errors(got, want)
                if key == "grads2":
                    first = np.array(record["grads"])
                    return _fail("grads_not_zeroed", where + ", second backward()",
                                 f"calling backward() twice changed the grads (from {first.tolist()} to "
                                 f"{got.tolist()}): grads are not reset.", err)
                code, what = classify(got, want, rtol, tol)
                return _fail(code, where, f"input grads {what}: {_describe(err)}.", err)
        return CaseResult(True)
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_tape(ns, seed=0, test_id=None) -> Result:
    """``check_tape(ns, seed=0)``: Var values and grads, shared subexpressions, backward() twice."""
    with _quiet():
        verdicts = [judge_tape(s, probe(ns, s), numeric_tape_expectation(s)) for s in tape_specs(seed)]
    return combine(test_id or "tape", verdicts)


def tape_suite_specs(test: dict, params: dict, ns=None, classes=None) -> list:
    return [s for seed in _seeds(params) for s in tape_specs(seed)]


def numeric_tape_case(ns, spec: dict) -> CaseResult:
    return judge_tape(spec, probe(ns, spec), numeric_tape_expectation(spec))


def tape_exact(spec: dict, rec: dict) -> dict:
    return {**rec, "rtol": RTOL_EXACT, "atol": ATOL_EXACT}


register(Kind("tape", probe=_probe_tape, judge=judge_tape, specs=tape_suite_specs,
              numeric_case=numeric_tape_case, exact=tape_exact))
