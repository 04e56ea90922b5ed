"""Check kind ``dual``: the forward-mode ``Dual`` class, one operation (one method) per test.

Each operation is tried on duals with nonzero dots on both operands, one of positive and
one of negative value, and with plain numbers on either side; after every expression the
operands must be unchanged (a new ``Dual`` is returned). A wrong result names the method
at fault (``Dual.__rsub__`` for ``c - a``) and, where the numbers show it, the rule that
was broken (a term of the product rule, the quotient rule, the chain-rule factor, a
reflected operator computed the wrong way round).
"""
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import DIAGNOSES, CaseResult, Kind, Result, _err, _fail, _need, _quiet, _seeds, combine, probe, register
from .compare import ATOL, ATOL_EXACT, H, RTOL, RTOL_EXACT, _error_case
from .elementary import FUNCTION_NAMES, MATH_FUNCTIONS, _env
from .types import Namespace, OpsRecord, OpsSpec


# Diagnoses in the vocabulary of dual numbers (values and dot parts, never forward()).
DUAL_DIAGNOSES = {
    "dual_value_wrong": ("the value part (val) is wrong",
                         "A Dual's val is the ordinary result on the operands' vals (u + v, u * v, g(u)); "
                         "the dots do not enter it."),
    "dual_not_returned": ("the result is not a Dual",
                          "Every operation returns a new Dual(val, dot), also when the other operand is a plain number."),
    "dual_constructor_changed": ("Dual(val, dot) does not store its arguments",
                                 "The constructor is given: keep it as it was (self.val = float(val), "
                                 "self.dot = float(dot))."),
    "dual_operand_mutated": ("the operation changed its operand",
                             "Return a new Dual and leave self and other untouched: no `self.val = ...` or "
                             "`self.dot += ...` inside an operator."),
    "dot_ignored": ("the dot part is zero",
                    "Every operation must also build the new dot from the operands' vals and dots (the table's "
                    "rule); Dual(value) alone has dot 0."),
    "product_rule_term": ("a term of the product rule is missing",
                          "(u v)' = u'·v + u·v': each operand's dot times the other operand's val, both terms."),
    "quotient_rule": ("the quotient rule is wrong",
                      "(u / v)' = (u'·v - u·v') / v², with the minus sign and the square; for c / v (a plain "
                      "number c) that is -c·v' / v²."),
    "power_rule": ("the power rule is wrong",
                   "(uⁿ)' = n·uⁿ⁻¹·u' for a plain number n; it must also work for a negative u with an integer "
                   "n, so do not go through exp(n·log u)."),
    "chain_rule_factor": ("the chain rule's factor u' is missing",
                          "g(u)' = g'(u)·u': multiply the derivative of the function by the operand's dot."),
    "reflected_reversed": ("a reflected operator computes the operation the wrong way round",
                           "`c - x` calls x.__rsub__(c), which must compute c - x (not x - c); "
                           "`c / x` calls x.__rtruediv__(c), which must compute c / x."),
    "dot_sign_error": ("the dot has the wrong sign",
                       "Check the signs in the rule: (u - v)' = u' - v', (-u)' = -u', cos' = -sin, "
                       "(c / v)' = -c·v' / v²."),
    "dot_wrong": ("the dot part is wrong",
                  "Apply the rule from the table: the new dot comes from the operands' vals and dots (product rule, "
                  "quotient rule, chain rule g'(u)·u')."),
}
DIAGNOSES.update(DUAL_DIAGNOSES)


# op -> (method graded, [(expression text, expression)]); an expression is a function of
# (F, A, B, c, n, k): F the elementary functions, A a dual of positive val, B one of negative
# val (positive for log), c a plain number, n a fractional exponent, k an integer one.
DUAL_OPS = {
    "add": ("__add__", [("a + b", lambda F, A, B, c, n, k: A + B), ("a + c", lambda F, A, B, c, n, k: A + c)]),
    "radd": ("__radd__", [("c + a", lambda F, A, B, c, n, k: c + A), ("c + b", lambda F, A, B, c, n, k: c + B)]),
    "sub": ("__sub__", [("a - b", lambda F, A, B, c, n, k: A - B), ("b - a", lambda F, A, B, c, n, k: B - A),
                        ("a - c", lambda F, A, B, c, n, k: A - c)]),
    "rsub": ("__rsub__", [("c - a", lambda F, A, B, c, n, k: c - A), ("c - b", lambda F, A, B, c, n, k: c - B)]),
    "mul": ("__mul__", [("a * b", lambda F, A, B, c, n, k: A * B), ("b * a", lambda F, A, B, c, n, k: B * A),
                        ("a * c", lambda F, A, B, c, n, k: A * c)]),
    "rmul": ("__rmul__", [("c * a", lambda F, A, B, c, n, k: c * A), ("c * b", lambda F, A, B, c, n, k: c * B)]),
    "div": ("__truediv__", [("a / b", lambda F, A, B, c, n, k: A / B), ("b / a", lambda F, A, B, c, n, k: B / A),
                            ("a / c", lambda F, A, B, c, n, k: A / c)]),
    "rdiv": ("__rtruediv__", [("c / a", lambda F, A, B, c, n, k: c / A), ("c / b", lambda F, A, B, c, n, k: c / B)]),
    "pow": ("__pow__", [("a ** n", lambda F, A, B, c, n, k: A ** n), ("b ** k", lambda F, A, B, c, n, k: B ** k),
                        ("a ** k", lambda F, A, B, c, n, k: A ** k)]),
    "neg": ("__neg__", [("-a", lambda F, A, B, c, n, k: -A), ("-b", lambda F, A, B, c, n, k: -B)]),
}
for _f in FUNCTION_NAMES:
    DUAL_OPS[_f] = (_f, [(f"{_f}(a)", (lambda f: lambda F, A, B, c, n, k: F[f](A))(_f)),
                         (f"{_f}(b)", (lambda f: lambda F, A, B, c, n, k: F[f](B))(_f))])


def dual_unit(op: str) -> str:
    """The method an op grades, as the student reads it: ``Dual.__rsub__``, ``Dual.exp``."""
    return f"Dual.{DUAL_OPS[op][0]}"


def dual_specs(ops: Sequence[str] | None = None, seed: int = 0) -> list[OpsSpec]:
    """One spec per seed with every op of the test (an operator and its reflected twin are one
    unit, so a bug wrong on every expression of its op fails the whole case). Dots are nonzero on both operands and of different sizes (|a.dot| in
    [1.5, 2.5], |b.dot| in [0.3, 0.8]), so no rule's terms cancel, a dropped term or factor
    is an O(1) error, and a missing chain-rule factor a.dot is never close to 1."""
    rng = np.random.default_rng(seed)
    sign = lambda: float(rng.choice([-1.0, 1.0]))
    a = (float(rng.uniform(0.6, 2.0)), sign() * float(rng.uniform(1.5, 2.5)))
    b = (-float(rng.uniform(0.6, 2.0)), sign() * float(rng.uniform(0.3, 0.8)))
    c = sign() * float(rng.uniform(0.6, 2.0))
    n = float(rng.choice([2.5, -1.5, 3.5]))
    k = int(rng.choice([3, -3]))
    return [{"check": "dual", "ops": list(ops or DUAL_OPS), "a": a, "b": b, "c": c, "n": n, "k": k}]


def dual_expressions(spec: OpsSpec) -> list:
    """(op, text, expression, a, b) for every expression of the spec's ops; log sees |b|."""
    a, b = tuple(spec["a"]), tuple(spec["b"])
    return [(op, text, expr, a, (abs(b[0]), b[1]) if op == "log" else b)
            for op in spec["ops"] for text, expr in DUAL_OPS[op][1]]


def _dual_pair(d: Any) -> list | None:
    try:
        return [float(d.val), float(d.dot)]
    except Exception:
        return None


def _probe_dual(ns: Namespace, spec: OpsSpec) -> OpsRecord:
    Dual = _need(ns, "Dual")
    F = _env(ns)
    out = []
    for _, _, expr, a, b in dual_expressions(spec):
        try:
            A, B = Dual(*a), Dual(*b)
            made = [_dual_pair(A), _dual_pair(B)]
            r = expr(F, A, B, spec["c"], spec["n"], spec["k"])
            item = {"made": made, "operands": [_dual_pair(A), _dual_pair(B)], "same": bool(r is A or r is B)}
            if hasattr(r, "val") and hasattr(r, "dot"):
                item.update(val=float(r.val), dot=float(r.dot))
            else:
                item["val"] = float(r)
            out.append(item)
        except (Exception, SystemExit) as e:
            out.append({"error": _err(e)})
    return {"results": out}


def numeric_dual_expectation(spec: OpsSpec) -> dict:
    """val from math; dot = d/dt of the expression along (a.dot, b.dot), by central differences."""
    out = []
    for _, _, expr, (av, ad), (bv, bd) in dual_expressions(spec):
        g = lambda t: expr(MATH_FUNCTIONS, av + t * ad, bv + t * bd, spec["c"], spec["n"], spec["k"])
        with _quiet():
            out.append({"val": g(0.0), "dot": (g(H) - g(-H)) / (2 * H)})
    return {"results": out, "rtol": RTOL, "atol": ATOL * 10}


def _near(x: float, y: float, rtol: float, atol: float) -> bool:
    return math.isfinite(x) and abs(x - y) <= atol * (1 + abs(y)) + rtol * abs(y)


def dual_names(text: str) -> list:
    """The operand names (a, b, c, n, k) an expression's text uses."""
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()
    return sorted(set(w for w in words if w in ("a", "b", "c", "n", "k")))


def _dual_text(spec: dict, text: str, a: tuple, b: tuple) -> str:
    """``a * b with a = Dual(1.2, 2.1), b = Dual(-0.8, 0.5)``: the expression and its operands."""
    (av, ad), (bv, bd) = a, b
    shown = {"a": f"a = Dual({av:.4g}, {ad:.4g})", "b": f"b = Dual({bv:.4g}, {bd:.4g})",
             "c": f"c = {spec['c']:.4g}", "n": f"n = {spec['n']:g}", "k": f"k = {spec['k']}"}
    names = dual_names(text)
    return f"{text} with " + ", ".join(shown[v] for v in names)


def _dual_reversed(spec: dict, text: str, a: tuple, b: tuple) -> tuple | None:
    """(val, dot) of ``c - x`` / ``c / x`` computed the wrong way round (x - c, x / c)."""
    (av, ad), (bv, bd) = a, b
    v, d = (av, ad) if text.endswith("a") else (bv, bd)
    c = spec["c"]
    if text.startswith("c - "):
        return v - c, d
    if text.startswith("c / "):
        return v / c, d / c
    return None


def _dual_dot_cause(op: str, text: str, a: tuple, b: tuple, got: float, want: float, rtol: float,
                    atol: float) -> str:
    """The most specific diagnosis the numbers support for a wrong dot."""
    (av, ad), (bv, bd) = a, b
    if abs(got) <= atol and abs(want) > 10 * atol:
        return "dot_ignored"
    if _near(got, -want, rtol, atol):
        return "dot_sign_error"
    if op in FUNCTION_NAMES:
        d = ad if text.endswith("(a)") else bd
        return "chain_rule_factor" if _near(got, want / d, rtol, atol) else "dot_wrong"
    if op in ("mul", "rmul") and "c" not in text:
        return "product_rule_term" if any(_near(got, t, rtol, atol) for t in (ad * bv, av * bd)) else "dot_wrong"
    if op in ("div", "rdiv"):
        return "quotient_rule"
    if op == "pow":
        return "power_rule"
    return "dot_wrong"


def judge_dual(spec: OpsSpec, record: OpsRecord, expected: dict) -> CaseResult:
    units = ", ".join(dict.fromkeys(dual_unit(op) for op in spec["ops"]))
    if isinstance(record, dict) and "error" in record and "results" not in record:
        return _error_case(record, units, component=units)  # the probe failed before any operation
    try:
        got = record["results"]
        if not isinstance(got, list) or len(got) != len(expected["results"]):
            return _fail("protocol_error", units, "results missing from the record.", {"component": units})
        rtol, atol = expected["rtol"], expected["atol"]
        for (op, text, _, a, b), g, w in zip(dual_expressions(spec), got, expected["results"]):
            unit = dual_unit(op)
            where = f"{unit} ({_dual_text(spec, text, a, b)})"
            at = {"component": unit, "expression": text}
            if not isinstance(g, dict):
                return _fail("protocol_error", where, "malformed result.", at)
            if "error" in g:
                err = g["error"]
                if op == "pow" and isinstance(err, dict) and "b" in text and err.get("type") in ("ValueError", "TypeError"):
                    return _fail("power_rule", where, f"raised {err.get('type')}: {str(err.get('message'))[:200]} "
                                 f"(a negative base with an integer exponent).", at)
                return _error_case({"error": err}, where, component=unit)
            before = [list(a), list(b)]
            if not isinstance(g.get("same"), bool):
                return _fail("protocol_error", where, "malformed result.", at)
            if g.get("made") != before:
                return _fail("dual_constructor_changed", where, f"Dual({a[0]!r}, {a[1]!r}) and Dual({b[0]!r}, "
                             f"{b[1]!r}) made {g.get('made')}: the given constructor must store val and dot.", at)
            if g.get("same") is True or g.get("operands") != before:
                return _fail("dual_operand_mutated", where, f"after `{text}` the operands were "
                             f"{g.get('operands')}, not {before} (or the result is an operand itself).", at)
            val = g.get("val")
            if not isinstance(val, float):
                return _fail("protocol_error", where, "value missing from the record.", at)
            if not _near(val, w["val"], rtol, atol):
                rev = _dual_reversed(spec, text, a, b)
                code = "reflected_reversed" if rev and _near(val, rev[0], rtol, atol) else (
                    "power_rule" if op == "pow" else "dual_value_wrong")
                return _fail(code, where, f"val: expected {w['val']:.6g}, got {val:.6g}.",
                             {**at, "expected": w["val"], "got": val})
            dot = g.get("dot")
            if not isinstance(dot, float):
                return _fail("dual_not_returned", where, f"returned the number {val:.6g}, not a Dual.", at)
            if not _near(dot, w["dot"], rtol, atol):
                code = _dual_dot_cause(op, text, a, b, dot, w["dot"], rtol, atol)
                return _fail(code, where, f"dot: expected {w['dot']:.6g}, got {dot:.6g}.",
                             {**at, "expected": w["dot"], "got": dot})
        return CaseResult(True)
    except Exception as e:
        return _fail("protocol_error", units, f"the probe record could not be judged ({type(e).__name__}).")


def check_dual(ns: Namespace, ops: Sequence[str] | None = None, seed: int = 0, test_id: str | None = None) -> Result:
    """``check_dual(ns, ops=["mul", "rmul"], seed=0)``: value and dot of each operation."""
    with _quiet():
        verdicts = [judge_dual(s, probe(ns, s), numeric_dual_expectation(s)) for s in dual_specs(ops, seed)]
    return combine(test_id or "dual", verdicts)


def dual_suite_specs(test: dict, params: dict, ns: Namespace = None,
                     classes: Sequence[str] | None = None) -> list[OpsSpec]:
    return [s for seed in _seeds(params) for s in dual_specs(params.get("ops"), seed)]


def numeric_dual_case(ns: Namespace, spec: OpsSpec) -> CaseResult:
    return judge_dual(spec, probe(ns, spec), numeric_dual_expectation(spec))


def dual_exact(spec: OpsSpec, rec: OpsRecord) -> dict:
    return {"results": [{"val": r["val"], "dot": r["dot"]} for r in rec["results"]],
            "rtol": RTOL_EXACT, "atol": ATOL_EXACT}


register(Kind("dual", probe=_probe_dual, judge=judge_dual, specs=dual_suite_specs,
              numeric_case=numeric_dual_case, exact=dual_exact))
