"""The judge of the ``component`` kind: one case of one component class, in named steps.

``judge_component`` runs the steps in order and returns the first failure: the probe's
error before backward, the forward value (``_judge_value``), operands changed by forward,
the value's closeness (``_judge_value_close``),
the backward error, grad shapes (``_judge_grad_shapes``), grad values (``_judge_grads``:
a random projection, or the full Jacobian with a diagnosis), operands changed by
backward, and accumulation into a grad already present (``_judge_accumulation``).
"""
from dataclasses import dataclass

import numpy as np

from .base import CaseResult, _fail
from .compare import (FORWARD_ATOL, FORWARD_RTOL, RTOL_EXACT, _close, _describe, _error_case, _errors, _valid,
                      broadcasts_to, classify)
from .contract import OPERANDS
from .conv_diagnose import conv_refine
from .hints import declared_refine
from .types import ComponentRecord, ComponentSpec


def _shapes_text(spec: dict) -> str:
    return ", ".join(str(tuple(np.shape(o))) for o in spec["operands"])


def _case_text(spec: dict) -> str:
    regime = f" ({spec['regime']})" if spec.get("regime") else ""
    return f"case {spec.get('case', 0) + 1}{regime}, operand shapes {_shapes_text(spec)}"


# float32 carries about 7 significant digits: a value within this of the exact one is
# right up to its precision
LOW_PRECISION_RTOL = 1e-5


@dataclass
class _ComponentCase:
    """What every step of judging one component case needs."""

    spec: dict
    rec: dict
    exp: dict
    name: str
    names: tuple
    where: str
    ops: list
    labels: list

    @property
    def forward_at(self) -> str:
        return f"{self.name}.forward ({_case_text(self.spec)})"

    @property
    def backward_at(self) -> str:
        return f"{self.name}.backward ({_case_text(self.spec)})"

    def operand_at(self, k: int) -> str:
        return f"{self.backward_at}, operand {self.names[k]}"

    def graded(self) -> list[tuple[int, np.ndarray]]:
        """(index, operand) of the operands that get a grad (labels do not)."""
        return [(k, o) for k, o in enumerate(self.ops) if k not in self.labels]


def judge_component(spec: ComponentSpec, record: ComponentRecord, expected: dict) -> CaseResult:
    """Judge one component case. ``expected``: {"value", and either "grads"/"grads_ones"
    (full, per operand) or "proj" (u, want, scale), "rtol", "atol"}; for a case made of
    instances (``spec["parts"]``), {"parts": [one such expectation per instance]}."""
    if "parts" in spec:
        return _judge_parts(spec, record, expected)
    name = spec["target"]
    names = OPERANDS.get(name, tuple(f"operand{i}" for i in range(len(spec["operands"]))))
    where = f"{name} ({_case_text(spec)})"
    if not isinstance(record, dict):
        return _fail("protocol_error", where, "the probe record is not a dict.")
    try:
        c = _ComponentCase(spec, record, expected, name, names, where,
                           [np.asarray(o) for o in spec["operands"]], list(spec.get("labels") or []))
        return declared_refine(spec, record, expected, conv_refine(spec, record, expected, _judge_component(c)))
    except Exception as e:  # a malformed record must fail, never crash the grader
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def _judge_parts(spec: ComponentSpec, record: ComponentRecord, expected: dict) -> CaseResult:
    """A case judged on several instances (one per region, or large inputs + an ordinary
    instance) passes only if every instance does; the first failure names its regime."""
    where = f"{spec['target']} (case {spec.get('case', 0) + 1})"
    parts = spec["parts"]
    recs = record.get("parts") if isinstance(record, dict) else None
    exps = expected.get("parts") if isinstance(expected, dict) else None
    if isinstance(record, dict) and "error" in record and recs is None:
        return _error_case(record, where, spec["target"])
    if not isinstance(recs, list) or len(recs) != len(parts) or not isinstance(exps, list) or len(exps) != len(parts):
        return _fail("protocol_error", where, "the probe record does not hold one record per instance.")
    for i, (p, r, e) in enumerate(zip(parts, recs, exps)):
        verdict = judge_component(p, r, e)
        if not verdict.passed:
            verdict.details = {**verdict.details, "regime": p.get("regime"), "instance": i}
            if verdict.localise:
                verdict.localise = i
            return verdict
    return CaseResult(True)


def _judge_component(c: _ComponentCase) -> CaseResult:
    rec = c.rec
    if c.spec.get("strict") and rec.get("error_at") == "forward" and isinstance(rec.get("error"), dict) \
            and rec["error"].get("type") == "FloatingPointError":
        return _fail("non_finite", c.forward_at,
                     f"overflow on inputs in the thousands ({str(rec['error'].get('message', ''))[:80]}): "
                     "an intermediate such as np.exp(-x) or np.exp(x) overflowed to inf, even if the final "
                     "value came out finite.", {"component": c.name, "regime": c.spec.get("regime")})
    if "error" in rec and rec.get("error_at") in ("lookup", "construct", "forward", "probe", None):
        return _error_case(rec, c.where, c.name)
    failed = _judge_value(c) or _mutation_case(c, "forward") or _judge_value_close(c)
    if failed:
        return failed
    if c.spec.get("forward_only"):
        return CaseResult(True)
    if "error" in rec:
        shapes = {o.shape for _, o in c.graded()}
        return _error_case(rec, c.backward_at, c.name, broadcast=len(shapes) > 1 and c.name != "VDot")
    grads = rec.get("grads")
    if not isinstance(grads, list) or len(grads) != len(c.ops):
        return _fail("protocol_error", c.where, "grads missing from the record.")
    return (_judge_grad_shapes(c, grads) or _judge_grads(c, grads) or _mutation_case(c, "backward")
            or _judge_accumulation(c, grads) or CaseResult(True))


def _mutation_case(c: _ComponentCase, stage: str) -> CaseResult | None:
    """The failing case if ``stage`` (forward or backward) changed an operand's value, else None."""
    after = c.rec.get(f"operands_after_{stage}")
    if not isinstance(after, list) or len(after) != len(c.ops):
        return _fail("protocol_error", c.where, "operand values missing from the record.")
    for k, (a, o) in enumerate(zip(after, c.ops)):
        if _valid(a, o.shape) or not np.array_equal(a, o):
            return _fail("operand_mutated", f"{c.name}.{stage} ({_case_text(c.spec)})",
                         f"changed the value of its operand {c.names[k]}.", {"component": c.name, "operand": c.names[k]})
    return None


def _judge_value(c: _ComponentCase) -> CaseResult | None:
    """self.value: a float array of the right shape, finite where the exact value is."""
    want = np.asarray(c.exp["value"])
    value = c.rec.get("value")
    bad = _valid(value)
    if bad:
        return _fail("forward_wrong", c.forward_at, f"self.value {bad}.")
    if value.shape != want.shape:
        return _fail("forward_wrong", c.forward_at, f"self.value has shape {value.shape}, expected {want.shape}.",
                     {"component": c.name, "expected_shape": list(want.shape), "got_shape": list(value.shape)})
    if value.dtype.kind != "f":
        return _fail("forward_wrong", c.forward_at, f"self.value has dtype {value.dtype}, expected a float dtype.")
    if value.dtype.itemsize < 8 and _close(value, want, LOW_PRECISION_RTOL,
                                          LOW_PRECISION_RTOL * (1 + np.max(np.abs(want), initial=0))):
        return _fail("low_precision", c.forward_at,
                     f"self.value is {value.dtype}; it agrees with the exact value to {value.dtype}'s precision, "
                     "but the checks need float64.", {"component": c.name, "dtype": str(value.dtype)})
    if np.all(np.isfinite(want)) and not np.all(np.isfinite(value)):
        return _fail("non_finite", c.forward_at, "self.value contains NaN or inf where the exact value is finite.",
                     {"component": c.name, **_errors(value, want)})
    return None


def _judge_value_close(c: _ComponentCase) -> CaseResult | None:
    """self.value agrees with the expected value (judged after the mutation check)."""
    want = np.asarray(c.exp["value"])
    value = c.rec["value"]
    if not _close(value, want, FORWARD_RTOL, FORWARD_ATOL * (1 + np.max(np.abs(want), initial=0))):
        err = _errors(value, want)
        return _fail("forward_wrong", c.forward_at, f"value wrong: {_describe(err)}.", {"component": c.name, **err})
    return None


def _judge_grad_shapes(c: _ComponentCase, grads: list) -> CaseResult | None:
    """Every graded operand's grad: a numeric array of its operand's shape, finite."""
    out_shape = np.shape(c.exp["value"])
    for k, o in c.graded():
        g, n, w = grads[k], c.names[k], c.operand_at(k)
        bad = _valid(g)
        if bad:
            return _fail("exception" if g is None else "grad_shape", w, f"{n}.grad {bad}.")
        if g.shape != o.shape:
            d = {"component": c.name, "operand": n, "expected_shape": list(o.shape), "got_shape": list(g.shape)}
            if c.name == "VDot":
                return _fail("matmul_transposed", w, f"{n}.grad has shape {g.shape}, expected {o.shape}.", d)
            if g.shape == out_shape and o.shape != out_shape and broadcasts_to(o.shape, out_shape):
                return _fail("bias_not_summed", w, f"{n}.grad has the broadcast shape {g.shape}, expected {o.shape}.", d)
            return _fail("grad_shape", w, f"{n}.grad has shape {g.shape}, expected {o.shape}.", d)
        if not np.all(np.isfinite(g)):
            return _fail("non_finite", w, f"{n}.grad contains NaN or inf.", {"component": c.name, "operand": n})
    return None


def _judge_grads(c: _ComponentCase, grads: list) -> CaseResult | None:
    """Grad values: one random projection (fast path), else per operand with a diagnosis."""
    rtol, atol = c.exp["rtol"], c.exp["atol"]
    if "proj" in c.exp:
        p = c.exp["proj"]
        got = sum(float(np.sum(g * u)) for g, u in zip(grads, p["u"]) if u is not None)
        if abs(got - p["want"]) > rtol * p["scale"] + atol:
            return _fail("wrong_gradient", c.backward_at,
                         f"the random projection v^T J u is {got:.6g}, central differences give {p['want']:.6g}.",
                         {"component": c.name}, localise=True)
        return None
    for k, _ in c.graded():
        g, want = grads[k], np.asarray(c.exp["grads"][k])
        if not _close(g, want, rtol, atol):
            ones = c.exp.get("grads_ones")
            code, what = classify(g, want, rtol, atol, None if ones is None else np.asarray(ones[k]),
                                  is_matmul=c.name == "VDot")
            if code in ("wrong_gradient", "matmul_transposed") and _close(
                    g, want, LOW_PRECISION_RTOL, LOW_PRECISION_RTOL * (1 + np.max(np.abs(want), initial=0))):
                code, what = "low_precision", ("agrees with the exact gradient only to about 5-7 digits "
                                               "(float32 arithmetic, or an approximation such as a difference quotient)")
            err = _errors(g, want)
            return _fail(code, c.operand_at(k), f"{c.names[k]}.grad {what}: {_describe(err)}.",
                         {"component": c.name, "operand": c.names[k], "case": c.spec.get("case", 0), **err})
    return None


def _judge_accumulation(c: _ComponentCase, grads: list) -> CaseResult | None:
    """With a non-zero grad already present, backward adds its contribution (+=, not =)."""
    prior_run = c.rec.get("grads_prior")
    if not isinstance(prior_run, list) or len(prior_run) != len(c.ops):
        return _fail("protocol_error", c.where, "accumulation run missing from the record.")
    atol = c.exp["atol"]
    for k, _ in c.graded():
        g2, g, p, n, w = prior_run[k], grads[k], np.asarray(c.spec["prior"][k]), c.names[k], c.operand_at(k)
        if _valid(g2, p.shape):
            return _fail("grad_shape", w, f"with a non-zero {n}.grad already present, the grad {_valid(g2, p.shape)}.")
        scale = atol + RTOL_EXACT * (np.abs(g) + np.abs(p))
        if not np.all(np.abs(g2 - (p + g)) <= scale):
            if np.all(np.abs(g2 - g) <= scale):
                return _fail("assign_not_accumulate", w,
                             f"{n}.grad was overwritten — the value left by another consumer of {n} was lost.",
                             {"component": c.name, "operand": n})
            return _fail("wrong_gradient", w,
                         f"with a non-zero {n}.grad already present, the result is not old grad + contribution.",
                         {"component": c.name, "operand": n})
    return None
