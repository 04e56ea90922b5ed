"""Declared hints: a component's own diagnoses, decided from the numbers of a failed case.

A contract may declare hints beside its class (``reference/contract.py``, ``Hint``): a
diagnosis code, its words and advice, and an ``evidence`` expression over the case's
numbers. ``declared_refine`` is called by the component judge on every verdict: a failed
forward value gets the declared formula in its message, and a failed value or grad whose
numbers make a hint's evidence true gets that hint's diagnosis instead of a generic one.
"""
import numpy as np

from .base import CaseResult, _fail
from .compare import _close
from .contract import FORMULA_TEXT, HINTS, OPERANDS
from .notation import NOTATION
from .types import ComponentRecord, ComponentSpec

# generic diagnoses of a wrong number that a declared hint may name more precisely
_REFINABLE = ("forward_wrong", "wrong_gradient", "sign_error", "wrong_factor", "upstream_ignored")


def declared_refine(spec: ComponentSpec, record: ComponentRecord, expected: dict, verdict: CaseResult) -> CaseResult:
    """``verdict``, or the declared hint whose evidence the failed case's numbers show."""
    name = spec.get("target")
    if verdict.passed or verdict.diagnosis not in _REFINABLE or not isinstance(record, dict):
        return verdict
    try:
        hinted = _hinted(name, spec, record, expected, verdict)
    except Exception:  # evidence is best effort on an untrusted record: keep the plain verdict
        hinted = None
    if hinted is not None:
        return hinted
    if verdict.diagnosis == "forward_wrong" and name in FORMULA_TEXT and "The notes:" not in verdict.message:
        verdict.message += f" The notes: {FORMULA_TEXT[name]}."
    return verdict


def _hinted(name: str, spec: dict, rec: dict, exp: dict, verdict: CaseResult) -> CaseResult | None:
    operands = OPERANDS[name]
    ops = [np.asarray(o) for o in spec["operands"]]
    rtol, atol = float(exp.get("rtol", 1e-6)), float(exp.get("atol", 1e-8))
    env = {**NOTATION, **dict(spec.get("kwargs") or {}), **dict(zip(operands, ops)),
           "v_bar": np.asarray(spec.get("upstream", 0.0), dtype=float),
           "close": lambda a, b: bool(_close(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol, atol))}
    failed_operand = verdict.details.get("operand")
    case = f"case {spec.get('case', 0) + 1}" + (f" ({spec['regime']})" if spec.get("regime") else "")
    for hint in HINTS.get(name, ()):
        op = hint.get("operand")
        if op is None and verdict.diagnosis == "forward_wrong":
            got, want, where = rec.get("value"), exp.get("value"), f"{name}.forward ({case})"
            what = "self.value"
        elif op is not None and op == failed_operand and "grads" in exp and verdict.diagnosis != "forward_wrong":
            k = operands.index(op)
            got, want, where = rec["grads"][k], exp["grads"][k], f"{name}.backward ({case}), operand {op}"
            what = f"{op}.grad"
        else:
            continue
        if not isinstance(got, np.ndarray) or np.shape(got) != np.shape(want):
            continue
        scope = {"__builtins__": {}, **env, "got": got.astype(float), "want": np.asarray(want, dtype=float)}
        if bool(eval(compile(hint["evidence"], f"<{name} hint {hint['code']}>", "eval"), scope)):
            return _fail(hint["code"], where, f"{what} is wrong: {hint['words']}.",
                         {**verdict.details, "component": name, "evidence": hint["evidence"]})
    return None
