"""The judge of the ``backward_loop`` kind: the loop invariant after every reverse step.

Judging one Backward run is a sequence of named steps, each returning the first failure
or None: forward values and operands (``_judge_forward``), the grads before the first
step (``_check_pre``), every reverse step in the student's order (``_judge_step``, per
node ``_judge_node``), an error the probe met (``_judge_error``), and the end state
(``_judge_end``: every component processed, nothing changed after the last step, a
second call gives the same grads).
"""
from collections.abc import Callable, Iterable
from typing import Any
from dataclasses import dataclass

import numpy as np

from .base import CaseResult, _Lazy, _fail, _jsonable
from .compare import (ATOL_EXACT, FORWARD_ATOL, FORWARD_RTOL, RTOL_EXACT, _close, _describe, _error_case, _errors,
                      _valid, broadcasts_to, classify)
from .graphs import STANDINS, _components, _judged, record_order, valid_prefix
from .types import LoopRecord, LoopSpec


def _graph_details(spec: LoopSpec, processed: Iterable[str] = (), broken: str | None = None,
                   bad_node: str | None = None) -> dict:
    return {"nodes": [{"name": n["name"], "kind": n["kind"], "args": list(n["args"])} for n in spec["nodes"]],
            "loss": spec["loss"], "processed": list(processed), "broken": broken, "bad_node": bad_node}


def judge_backward(spec: LoopSpec, record: LoopRecord, expected: dict) -> CaseResult:
    """Judge one Backward run against the invariant expectation (full arrays or projections)."""
    where = f"Backward on graph `{spec.get('graph', '?')}`"
    if not isinstance(record, dict):
        return _fail("protocol_error", where, "the probe record is not a dict.")
    try:
        return _judge_backward(_Run.of(spec, record, expected, where))
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def _grad_at(snap: Any, name: str) -> np.ndarray | None:
    if not isinstance(snap, dict):
        return None
    a = snap.get(name)
    return a if _valid(a) is None else None


@dataclass
class _Run:
    """One Backward run being judged: the spec, the (untrusted) record, the expectation."""

    spec: dict
    rec: dict
    exp: dict
    where: str
    comps: list
    names: list
    judged: list
    values: dict
    order: list

    @classmethod
    def of(cls, spec: dict, rec: dict, exp: dict, where: str) -> "_Run":
        comps = _components(spec)
        values = {n["name"]: np.asarray(spec["values"][n["name"]]) for n in spec["nodes"] if n["name"] in spec["values"]}
        values.update(exp["values"])
        return cls(spec, rec, exp, where, comps, [c["name"] for c in comps], _judged(spec), values, record_order(rec))

    def graph(self, k: int = 0, broken: str | None = None, bad: str | None = None) -> dict:
        """Details for drawing the graph: the first ``k`` processed components, the culprit."""
        processed = [self.names[i] for i in self.order[:k] if 0 <= i < len(self.names)]
        return {"graph": _graph_details(self.spec, processed, broken, bad)}

    def component_at(self, ci: Any) -> dict | None:
        return self.comps[ci] if isinstance(ci, int) and 0 <= ci < len(self.comps) else None


def _judge_backward(r: _Run) -> CaseResult:
    rec = r.rec
    fsteps = rec.get("forward_steps")
    if rec.get("error_at") in ("lookup", "construct", "probe") or not isinstance(fsteps, list):
        return _error_case(rec, r.where) if "error" in rec else _fail("protocol_error", r.where, "forward values missing.")
    failed = _judge_forward(r, fsteps)
    if failed:
        return failed
    if "error" in rec and rec.get("error_at") == "forward":
        ci = rec.get("error_component")
        c = r.component_at(ci)
        w = f"{c['kind']}.forward (`{c['name']}`, position {ci}) in graph `{r.spec['graph']}`" if c else r.where
        return _error_case({"error": rec["error"]}, w, c["kind"] if c else None)
    if len(fsteps) != len(r.comps):
        return _fail("protocol_error", r.where, "forward values missing.")
    pre = rec.get("pre")
    if r.order and not isinstance(pre, dict):
        return _fail("protocol_error", r.where, "grads before the first step missing from the record.")
    if isinstance(pre, dict):  # also when the first backward() raised
        failed = _check_pre(r.spec, pre, r.values, r.where, r.graph)
        if failed:
            return failed
    n_ok, reason = valid_prefix(r.spec, r.order)
    prev = pre
    for k in range(len(r.order)):
        failed, prev = _judge_step(r, k, n_ok, reason, prev)
        if failed:
            return failed
    if "error" in rec:
        return _judge_error(r)
    return _judge_end(r, prev) or CaseResult(True)


def _judge_forward(r: _Run, fsteps: list) -> CaseResult | None:
    """Each component's value right after its forward, and its operands left unchanged."""
    for i, c in enumerate(r.comps[:len(fsteps)]):
        fs = fsteps[i] if isinstance(fsteps[i], dict) else {}
        v, want = fs.get("value"), np.asarray(r.exp["values"][c["name"]])
        at = f"{c['kind']}.forward (`{c['name']}`, position {i}) in graph `{r.spec['graph']}`"
        d = {"component": c["kind"], "position": i, "node": c["name"]}
        if (isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.dtype.itemsize < 8 and v.shape == want.shape
                and _close(v, want, 1e-5, 1e-5 * (1 + np.max(np.abs(want), initial=0)))):
            # the first low-precision value in creation order is where it came from; its
            # consumers' errors follow from it and are not theirs
            return _fail("low_precision", at, f"value is {v.dtype}, so Backward is not judged.",
                         {**d, "dtype": str(v.dtype), **r.graph(0, c["name"], c["name"])})
        if _valid(v, want.shape) or not _close(v, want, FORWARD_RTOL, FORWARD_ATOL * (1 + np.max(np.abs(want), initial=0))):
            if np.all(np.isfinite(want)) and _valid(v, want.shape) is None and not np.all(np.isfinite(v)):
                return _fail("non_finite", at, "value contains NaN or inf.", {**d, **r.graph(0, c["name"], c["name"])})
            return _fail("forward_wrong", at, "value wrong, so Backward is not judged.",
                         {**d, **r.graph(0, c["name"], c["name"])})
        args = fs.get("args") if isinstance(fs.get("args"), dict) else {}
        for a in c["args"]:
            if not _same_value(args.get(a), r.values[a]):
                return _fail("operand_mutated", at, f"changed the value of its operand `{a}`.",
                             {**d, "operand": a, **r.graph(0, c["name"], a)})
    return None


def _judge_step(r: _Run, k: int, n_ok: int, reason: str | None,
                prev: Any) -> tuple[CaseResult | None, dict | None]:
    """Reverse step k: a valid next component, operands unchanged, its upstream grad as
    accumulated, and every judged grad satisfying the invariant. Returns (failure, snapshot)."""
    i = r.order[k]
    c = r.comps[i] if 0 <= i < len(r.comps) else None
    step_where = f"{r.where}, reverse step {k + 1}" + (
        f", after {c['kind']}.backward (`{c['name']}`, position {i})" if c else "")
    if k >= n_ok:
        return _fail("wrong_order", step_where, reason + ".", {"step": k + 1, "component": c["kind"] if c else None,
                                                             "position": i, **r.graph(k, c["name"] if c else None)}), None
    steps = r.rec.get("steps") or []
    s = steps[k]
    delta = s.get("grads") if isinstance(s, dict) else None
    # a step records only the grads it changed (see _changed); the rest are as before it
    snap = {**prev, **delta} if isinstance(delta, dict) and isinstance(prev, dict) else None
    args = s.get("args") if isinstance(s, dict) and isinstance(s.get("args"), dict) else {}
    for a in c["args"]:
        if not _same_value(args.get(a), r.values[a]):
            return _fail("operand_mutated", f"{step_where}", f"{c['kind']}.backward changed the value of its operand `{a}`.",
                         {"step": k + 1, "component": c["kind"], "position": i, "operand": a, "node": a,
                          **r.graph(k, c["name"], a)}), None
    up = s.get("upstream") if isinstance(s, dict) else None
    want_up = _grad_at(prev, c["name"])
    if want_up is not None and (_valid(up, want_up.shape) or not np.array_equal(up, want_up)):
        return _fail("grads_not_zeroed", step_where,
                     f"`{c['name']}`.grad was changed by Backward between steps (reset inside the loop?), "
                     "so its backward() did not see its accumulated upstream gradient.",
                     {"step": k + 1, "component": c["kind"], "position": i, **r.graph(k, c["name"], c["name"])}), None
    # the processed component's operands first: that is where a wrong backward shows
    for name in list(dict.fromkeys(c["args"])) + r.judged:
        if name not in r.judged:
            continue
        failed = _judge_node(r, k, i, c, name, snap, prev, step_where)
        if failed:
            return failed, None
    return None, snap


def _judge_node(r: _Run, k: int, i: int, c: dict, name: str, snap: dict | None, prev: Any,
                step_where: str) -> CaseResult | None:
    """``name``.grad after step k: shape, finiteness, then the invariant (projection or full)."""
    entry = r.exp["steps"][k][name]
    got = _grad_at(snap, name)
    shape = np.shape(r.values[name])
    rtol, atol = r.exp["rtol"], r.exp["atol"]
    base = _Lazy(lambda: {"step": k + 1, "component": c["kind"], "position": i, "node": name,
                          **r.graph(k, c["name"], name)})
    if got is None:
        return _fail("exception", step_where, f"`{name}`.grad is missing or not numeric.", base)
    if got.shape != shape:
        code = "grad_shape"
        if c["kind"] == "VDot" and name in c["args"]:
            code = "matmul_transposed"
        elif name in c["args"] and got.shape == np.shape(r.values[c["name"]]) and broadcasts_to(shape, np.shape(r.values[c["name"]])):
            code = "bias_not_summed"
        return _fail(code, step_where, f"`{name}`.grad has shape {got.shape}, expected {shape}.", base)
    if not np.all(np.isfinite(got)):
        return _fail("non_finite", step_where, f"`{name}`.grad contains NaN or inf.", base)
    if isinstance(entry, dict):
        g = float(np.sum(got * entry["u"]))
        if abs(g - entry["want"]) > rtol * entry["scale"] + atol:
            return _fail("wrong_gradient", step_where, f"`{name}`.grad breaks the invariant.", base,
                         localise=[(k, name)] + ([(k - 1, name)] if k else []))
        return None
    want = np.asarray(entry)
    if _close(got, want, rtol, atol):
        return None
    before = _grad_at(prev, name)
    want_before = (np.ones(shape) if name == r.spec["loss"] else np.zeros(shape)) if k == 0 else r.exp["steps"][k - 1][name]
    if isinstance(want_before, dict):
        return _fail("wrong_gradient", step_where, f"`{name}`.grad breaks the invariant.", base, localise=[(k - 1, name)])
    err = _errors(got, want)
    return _diagnose_node(r, k, c, name, got, want, before, want_before, step_where, err, {**base.make(), **err})


def _diagnose_node(r: _Run, k: int, c: dict, name: str, got: np.ndarray, want: np.ndarray,
                   before: np.ndarray | None, want_before: np.ndarray, step_where: str,
                   err: dict, details: dict) -> CaseResult:
    """The most specific diagnosis of a wrong ``name``.grad after the step processing ``c``."""
    rtol, atol = r.exp["rtol"], r.exp["atol"]
    if c["kind"] in STANDINS:  # the grader's own component: its backward is right, the loop is not
        return _fail("wrong_gradient", step_where,
                     f"`{name}`.grad breaks the invariant although the test component `{c['name']}` (an affine map "
                     f"whose backward() is the grader's) added the right contribution: Backward changed grads "
                     f"outside the components' backward() calls: {_describe(err)}.", {**details, "component": "Backward"})
    if name not in c["args"]:
        return _fail("wrong_gradient", step_where,
                     f"`{name}`.grad changed although `{name}` is not an operand of `{c['name']}`: {_describe(err)}.",
                     details)
    if before is not None and np.any(before != 0) and _close(got, want - want_before, rtol, atol):
        return _fail("assign_not_accumulate", step_where,
                     f"{c['kind']}.backward: `{name}`.grad was overwritten — the value left by the other consumer of "
                     f"`{name}` was lost.", details)
    ones = r.exp.get("ones", {}).get((k, name))
    code, what = classify(got - before, want - want_before, rtol, atol, ones, is_matmul=c["kind"] == "VDot")
    return _fail(code, step_where, f"{c['kind']}.backward: the contribution to `{name}`.grad {what}; "
                                   f"`{name}`.grad: {_describe(err)}.", details)


def _judge_error(r: _Run) -> CaseResult:
    """The probe raised during Backward (after the steps it recorded were judged)."""
    rec = r.rec
    ci = rec.get("error_component")
    c = r.component_at(ci)
    if rec.get("error_at") == "backward2":
        w = f"{r.where}, second call"
    elif c is not None:
        w = f"{r.where}, reverse step {len(r.order) + 1}, in {c['kind']}.backward (`{c['name']}`, position {ci})"
    else:
        w = r.where
    if c is not None and rec.get("error") and str(rec["error"].get("type")) == "AttributeError" \
            and "grad" in str(rec["error"].get("message")):
        return _fail("grads_not_zeroed", w, f"raised AttributeError: {rec['error'].get('message')} (a grad was never set).")
    broadcast = c is not None and len({np.shape(r.values[a]) for a in c["args"] if a in r.judged}) > 1
    return _error_case(rec, w, c["kind"] if c else None, broadcast=broadcast and c["kind"] != "VDot")


def _judge_end(r: _Run, prev: Any) -> CaseResult | None:
    """Every component processed once, grads unchanged after the last step, and a second
    Backward giving the same grads (so stale grads are reset, not accumulated)."""
    rec, order = r.rec, r.order
    if rec.get("truncated"):
        return _fail("wrong_order", r.where, "called backward() far more often than there are components.",
                     r.graph(len(order)))
    missing = [r.names[i] for i in range(len(r.comps)) if i not in set(order)]
    if missing:
        return _fail("wrong_order", r.where, f"never called backward() of `{missing[0]}`"
                     + (" (no component was processed)" if not order else "") + ".", r.graph(len(order), missing[0]))
    final = rec.get("final")
    for name in r.judged:
        got, last = _grad_at(final, name), _grad_at(prev, name)
        if got is None or last is None or got.shape != last.shape or not np.array_equal(got, last):
            return _fail("wrong_gradient", r.where, f"`{name}`.grad was changed after the last backward() call.",
                         {"node": name, **r.graph(len(order))})
    final2 = rec.get("final2")
    for name in r.judged:
        a, b = _grad_at(final, name), _grad_at(final2, name)
        if b is None or a.shape != b.shape or not _close(b, a, RTOL_EXACT, ATOL_EXACT * (1 + np.max(np.abs(a), initial=0))):
            return _fail("grads_not_zeroed", f"{r.where}, second call",
                         f"calling Backward twice gave a different `{name}`.grad (stale gradients accumulated).",
                         {"node": name, **r.graph(len(order))})
    return None


def _same_value(got: Any, want: Any) -> bool:
    want = np.asarray(want)
    return _valid(got, want.shape) is None and _close(got, want, FORWARD_RTOL,
                                                      FORWARD_ATOL * (1 + np.max(np.abs(want), initial=0)))


def _check_pre(spec: dict, pre: dict, values: dict, where: str, graph: Callable) -> CaseResult | None:
    """Before the first reverse step: every grad zeros of its value's shape, loss.grad ones."""
    w = f"{where}, before the first reverse step"
    loss = spec["loss"]
    for name in [loss] + [n for n in _judged(spec) if n != loss]:
        g = _grad_at(pre, name)
        shape = np.shape(values[name])
        base = {"step": 0, "node": name, **graph(0, None, name)}
        if g is None:
            return _fail("grads_not_zeroed", w, f"`{name}`.grad is not a numeric array.", base)
        if g.shape != shape:
            return _fail("grad_shape", w, f"`{name}`.grad has shape {g.shape}, expected {shape} (its value's shape).", base)
        want = np.ones(shape) if name == loss else np.zeros(shape)
        if not np.array_equal(g, want):
            if name == loss:
                return _fail("loss_not_seeded", w, f"loss.grad is {_jsonable(g)}, expected ones.", base)
            return _fail("grads_not_zeroed", w, f"`{name}`.grad still holds an old value, expected zeros.", base)
    return None
