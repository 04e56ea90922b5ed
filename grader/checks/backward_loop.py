"""Check kind ``backward_loop``: the loop invariant of the student's ``Backward``.

The probe builds a graph (``graphs.py``) from the student's classes, runs ``Backward``
twice with stale grads, and records every reverse step's changed grads; the judge
(``backward_judge.py``) checks the invariant after each step. Numerically, the expected
grads after step k are the gradients of the loss of the program made of the processed
components only (central differences, projections unless a failure needs localising).
"""
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .backward_judge import judge_backward
from .base import CaseResult, Kind, Result, _arr, _err, _get, _need, _quiet, _seeds, combine, probe, register
from .compare import ATOL, H, RTOL, Counter
from .contract import ALL_CLASSES
from .graphs import (STANDINS, _components, _judged, _loss_of, build_graph, evaluate_graph, node_formula, record_order,
                     valid_prefix)
from .types import LoopRecord, LoopSpec, Namespace


def standin_class(base: type, kind: str) -> type:
    """The stand-in component ``kind`` (graphs.STANDINS) as a subclass of ``base`` (the
    student's CompNode, or the reference's): ``kind(*operands, coef=[c0, c1, ...])``."""
    def __init__(self, *operands: Any, coef: Sequence[float] = ()) -> None:
        base.__init__(self)
        self.operands, self.coef = operands, [float(c) for c in coef]

    def forward(self) -> None:
        self.value = np.asarray(self.coef[0] + sum(c * np.asarray(o.value, dtype=float)
                                                   for c, o in zip(self.coef[1:], self.operands)))

    def backward(self) -> None:
        for c, o in zip(self.coef[1:], self.operands):
            o.grad += c * self.grad

    return type(kind, (base,), {"__init__": __init__, "forward": forward, "backward": backward,
                                "__doc__": "A test component of the grader: an affine map with known derivatives."})


def node_classes(ns: Namespace, spec: LoopSpec) -> dict[str, type]:
    """kind -> class for the components of a graph: the namespace's classes, stand-ins on its CompNode."""
    out = {}
    for n in _components(spec):
        if n["kind"] not in out:
            out[n["kind"]] = (standin_class(_need(ns, "CompNode"), n["kind"]) if n["kind"] in STANDINS
                              else _need(ns, n["kind"]))
    return out


def make_node(cls: type, n: dict, objs: dict) -> Any:
    """One component node of a graph spec, built from already made operand nodes."""
    args = [objs[a] for a in n["args"]]
    return cls(*args, coef=n["coef"]) if n["kind"] in STANDINS else cls(*args)


def graph_spec(graph: str, seed: int = 0, classes: Sequence[str] | None = None) -> LoopSpec:
    g = build_graph(graph, seed, classes)
    rng = np.random.default_rng([seed, 1])
    values = evaluate_graph(g)
    stale = {n["name"]: rng.normal(size=np.shape(values[n["name"]])) + 0.5 for n in g["nodes"]}
    return {"check": "backward_loop", "graph": graph, **g, "stale": stale}


def _changed(now: dict[str, np.ndarray | None], last: dict[str, np.ndarray | None]) -> dict[str, np.ndarray | None]:
    """The grads in snapshot ``now`` that differ from ``last``.

    A reverse step changes only its component's operands' grads, so a step records just
    those (the judge rebuilds each full snapshot from the one before): sending every node's
    grad after every step made the records of a loop test mostly repeats.
    """
    def same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
        if a is None or b is None:
            return a is b
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        # the same bytes: the same grad (NaN included); else equal values (0.0 and -0.0)
        return a.tobytes() == b.tobytes() or np.array_equal(a, b)
    return {name: g for name, g in now.items() if name not in last or not same(g, last[name])}


def _probe_backward(ns: Namespace, spec: LoopSpec) -> LoopRecord:
    rec = {"steps": []}
    stage = "lookup"
    state = {"depth": 0, "pre": None, "current": None, "steps": rec["steps"]}
    wrapped = {}
    try:
        Input, Parameter, Backward = _need(ns, "Input"), _need(ns, "Parameter"), _need(ns, "Backward")
        classes = node_classes(ns, spec)
        stage = "construct"
        objs = {}
        for n in spec["nodes"]:
            if n["kind"] == "Input":
                o = Input()
                o.set(np.array(spec["values"][n["name"]]))
            elif n["kind"] == "Parameter":
                o = Parameter(np.array(spec["values"][n["name"]], dtype=float))
            else:
                o = make_node(classes[n["kind"]], n, objs)
            objs[n["name"]] = o
        cnodes = _components(spec)
        comps = [objs[n["name"]] for n in cnodes]
        index = {id(c): i for i, c in enumerate(comps)}
        stage = "forward"
        rec["forward_steps"] = []
        for i, c in enumerate(comps):  # each value right after its forward, and its operands' values
            state["current"] = i
            c.forward()
            rec["forward_steps"].append({"value": _arr(getattr(c, "value", None)),
                                         "args": {a: _arr(objs[a].value) for a in cnodes[i]["args"]}})
        state["current"] = None
        rec["values"] = {name: _arr(getattr(o, "value", None)) for name, o in objs.items()}
        for name, o in objs.items():  # stale grads, as if left over from an earlier iteration
            o.grad = np.array(spec["stale"][name])
        limit = 4 * len(comps) + 4

        def snapshot() -> dict[str, np.ndarray | None]:
            return {name: _arr(getattr(o, "grad", None)) for name, o in objs.items()}

        def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
            def backward(self: Any, *args: Any, **kwargs: Any) -> Any:
                if state["depth"] or id(self) not in index:  # super().backward() or a foreign node
                    return orig(self, *args, **kwargs)
                if state["pre"] is None:
                    state["pre"] = state["last"] = snapshot()
                state["current"] = index[id(self)]
                upstream = _arr(getattr(self, "grad", None))
                state["depth"] += 1
                try:
                    out = orig(self, *args, **kwargs)
                finally:
                    state["depth"] -= 1
                if len(state["steps"]) < limit:
                    now = snapshot()
                    state["steps"].append({"component": index[id(self)], "upstream": upstream,
                                           "grads": _changed(now, state["last"]),
                                           "args": {a: _arr(objs[a].value) for a in cnodes[index[id(self)]]["args"]}})
                    state["last"] = now
                else:
                    rec["truncated"] = True
                state["current"] = None
                return out
            return backward

        for c in comps:  # wrap every class that defines backward, once, in the classes' MROs
            for cls in type(c).__mro__:
                f = cls.__dict__.get("backward")
                if cls not in wrapped and callable(f) and not isinstance(f, (staticmethod, classmethod)):
                    wrapped[cls] = f
                    cls.backward = wrap(f)
        stage = "backward"
        Backward(objs[spec["loss"]])
        rec["pre"] = state["pre"]
        rec["final"] = snapshot()
        stage = "backward2"
        state.update(pre=None, steps=[])
        Backward(objs[spec["loss"]])
        rec["final2"] = snapshot()
        rec["steps2"] = [s["component"] for s in state["steps"]]
    except (Exception, SystemExit) as e:
        rec["error"] = _err(e)
        rec["error_at"] = stage
        rec["error_component"] = state["current"]
        if stage == "backward":
            rec["pre"] = state["pre"]
    finally:
        for cls, f in wrapped.items():
            cls.backward = f
    return rec


def numeric_backward_expectation(spec: LoopSpec, order: list[int], counter: Counter | None = None,
                                 full_at: Iterable[tuple[int, str]] = ()) -> dict:
    """Expected invariant after each step of the (valid prefix of the) student's order.

    Each entry is a projection {"u", "want", "scale"} except at (step, node) in
    ``full_at``: there the full gradient, and the processed component's local
    contribution with upstream ones ("ones"), to localise and diagnose.
    """
    values = evaluate_graph(spec)
    comps = _components(spec)
    n_ok, _ = valid_prefix(spec, order)
    M = max(float(np.max(np.abs(v), initial=0)) for v in values.values())
    exp = {"values": {c["name"]: values[c["name"]] for c in comps}, "rtol": RTOL, "atol": ATOL * (1 + M),
           "steps": [], "ones": {}}
    rng = np.random.default_rng(7)
    judged = _judged(spec)
    full_at = set(full_at)

    def loss(S: set[int], node: str, new: np.ndarray) -> float:
        if counter is not None:
            counter.n += 1
        return _loss_of(spec, values, S, node, new)

    with _quiet():
        us = {name: rng.normal(size=np.shape(values[name])) for name in judged}
        entry = {}
        for k in range(n_ok):
            S = set(order[:k + 1])
            # Only the operands of the component just processed can change their
            # d loss_S / d v (a longer path would go through an unprocessed node): the
            # other entries carry over from the previous step.
            fresh = set(judged) if k == 0 else set(comps[order[k]]["args"])
            fresh |= {name for (kk, name) in full_at if kk == k}
            entry = dict(entry)
            for name in judged:
                if name not in fresh:
                    continue
                x = np.asarray(values[name], dtype=float)
                if (k, name) in full_at:
                    g = np.zeros(x.shape)
                    for j in np.ndindex(x.shape):
                        xp, xm = x.copy(), x.copy()
                        xp[j] += H
                        xm[j] -= H
                        g[j] = (loss(S, name, xp) - loss(S, name, xm)) / (2 * H)
                    entry[name] = g
                else:
                    u = us[name]
                    want = (loss(S, name, x + H * u) - loss(S, name, x - H * u)) / (2 * H)
                    entry[name] = {"u": u, "want": want, "scale": abs(want)}
            exp["steps"].append(entry)
            c = comps[order[k]]
            for name in set(c["args"]):
                if (k, name) in full_at and name in judged:
                    x = np.asarray(values[name], dtype=float)
                    g = np.zeros(x.shape)
                    f = node_formula(c)
                    for j in np.ndindex(x.shape):
                        xp, xm = x.copy(), x.copy()
                        xp[j] += H
                        xm[j] -= H
                        fp = f(*[xp if a == name else values[a] for a in c["args"]])
                        fm = f(*[xm if a == name else values[a] for a in c["args"]])
                        g[j] = np.sum(fp - fm) / (2 * H)
                    exp["ones"][(k, name)] = g
    return exp


def numeric_backward_case(ns: Namespace, spec: LoopSpec, counter: Counter | None = None) -> CaseResult:
    record = probe(ns, spec)
    order = record_order(record)
    full_at = set()
    for _ in range(4):
        verdict = judge_backward(spec, record, numeric_backward_expectation(spec, order, counter, full_at))
        if not verdict.localise or set(verdict.localise) <= full_at:
            return verdict
        full_at |= set(verdict.localise)
    return verdict


def check_backward(ns: Namespace, graph: str = "x_times_x_plus_1", seed: int = 0, classes: Sequence[str] | None = None,
                   test_id: str | None = None) -> Result:
    """Loop-invariant check of ``Backward``: ``check_backward(ns, graph="mlp2", seed=0)``.

    ``classes`` defaults to the contract classes defined in ``ns``.
    """
    classes = classes or [c for c in ALL_CLASSES if _get(ns, c) is not None]
    try:
        spec = graph_spec(graph, seed, classes)
    except ValueError as e:
        return Result(test_id or f"backward_{graph}", False, 0.0, f"graph `{graph}`: {e}", "missing", {})
    return combine(test_id or f"backward_{graph}", [numeric_backward_case(ns, spec)])


def backward_specs(test: dict, params: dict, ns: Namespace = None, classes: Sequence[str] | None = None) -> list[LoopSpec]:
    """One spec per (seed, graph); graphs use the test's classes, else ``classes``, else
    the contract classes ``ns`` defines."""
    classes = (test.get("classes") or params.get("classes") or classes
               or [c for c in ALL_CLASSES if _get(ns, c) is not None])
    return [graph_spec(g, seed, classes) for seed in _seeds(params)
            for g in params.get("graphs", ["x_times_x_plus_1"])]


register(Kind("backward_loop", probe=_probe_backward, judge=judge_backward, specs=backward_specs,
              numeric_case=numeric_backward_case, graph_lists=True))
