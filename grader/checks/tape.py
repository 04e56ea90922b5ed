"""Check kind ``tape``: the reverse-mode ``Var`` class, one unit per test.

Two kinds of spec, so each unit is judged on its own:

* an operation (``op`` = ``mul``, ``exp``, ...): the student's operator builds a ``Var``; the
  harness reads the value and walks the recorded ``parents`` pairs itself to get the local
  derivative of the result with respect to each operand (the student's ``backward`` is not
  called). Operands as for ``Dual``: positive and negative values, plain numbers on both
  sides, operands unchanged afterwards.
* ``backward``: the harness builds a graph with the given constructor ``Var(value, parents)``
  and known local derivatives (shared subexpressions, one node used twice by the same
  operation), so only ``topological_order()`` and ``backward()`` are judged: every node's
  grad after ``backward()``, again after a second ``backward()``, and after grads were set to
  garbage (zeroing), plus the order ``topological_order()`` returns.
"""
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import DIAGNOSES, CaseResult, Kind, Result, _err, _fail, _need, _quiet, _seeds, combine, probe, register
from .compare import ATOL, ATOL_EXACT, H, RTOL, RTOL_EXACT, _error_case
from .dual import DUAL_OPS, _dual_reversed, _dual_text, _near, dual_expressions, dual_names, dual_specs
from .elementary import FUNCTION_NAMES, MATH_FUNCTIONS, _env
from .types import Namespace, OpsRecord, OpsSpec


TAPE_DIAGNOSES = {
    "tape_value_wrong": ("the value of a Var is wrong",
                         "A Var's value is the ordinary result on the operands' values (a.value * b.value, g(u.value))."),
    "tape_not_recorded": ("an operand is not recorded on the tape",
                          "The new Var's parents must hold a pair (operand, local derivative) for every Var operand, "
                          "e.g. a * b records [(a, b.value), (b, a.value)]."),
    "tape_local_sign": ("a local derivative has the wrong sign",
                        "Check the sign of the local derivative: d(a - b)/db = -1, d(-a)/da = -1, cos' = -sin, "
                        "d(c / b)/db = -c / b²."),
    "tape_local_wrong": ("a local derivative recorded on the tape is wrong",
                         "Record d(result)/d(operand) at the operands' values: d(a*b)/da = b.value, d(a/b)/db = "
                         "-a.value / b.value², d(aⁿ)/da = n·aⁿ⁻¹, d g(u)/du = g'(u.value)."),
    "tape_operand_mutated": ("the operation changed its operand",
                             "Return a new Var and leave the operands' values and parents untouched."),
    "tape_not_returned": ("the result is not a Var", "Every operation returns a new Var (plain numbers are lifted)."),
    "tape_backward_noop": ("backward() left every grad unchanged",
                           "backward() must set its own grad to 1 and pass grad · local derivative to every parent."),
    "tape_not_seeded": ("the output's grad is not 1 after backward()",
                        "After zeroing every grad, set the output's own grad to 1 (d l / d l) before the sweep."),
    "tape_not_accumulated": ("a grad was overwritten instead of accumulated",
                             "parent.grad += node.grad * local: a node used by several operations (or twice by one) "
                             "sums the contributions of all its uses."),
    "tape_upstream_ignored": ("the node's own grad is not used in the sweep",
                              "Pass node.grad * local to the parent, not the local derivative alone."),
    "tape_wrong_order": ("the sweep does not run in reverse topological order",
                         "Process a node only after every node that uses it: walk topological_order() reversed."),
    "tape_not_zeroed": ("grads are not reset to zero at the start of backward()",
                        "Set every grad in the graph to 0 before seeding, so a second backward() (or grads left "
                        "from elsewhere) does not add onto old values."),
    "tape_order_wrong": ("topological_order() is not a valid order",
                         "List every node the output depends on exactly once, each after all of its parents "
                         "(remember visited nodes by id)."),
    "tape_grads_wrong": ("grads after backward() are wrong",
                         "Follow the three steps: zero every grad, seed the output with 1, then for each node in "
                         "reverse topological order add node.grad * local to each parent's grad."),
}
DIAGNOSES.update(TAPE_DIAGNOSES)

TAPE_OPS = tuple(DUAL_OPS) + ("backward",)
MAX_TAPE_NODES = 10_000


def tape_unit(op: str) -> str:
    """The method an op grades: ``Var.__mul__``, ``Var.exp``, ``Var.backward``."""
    return "Var.backward" if op == "backward" else f"Var.{DUAL_OPS[op][0]}"


def _tape_graph(rng: np.random.Generator) -> dict:
    """A graph by construction: inputs x, y, z; u = f(x, y) used three times (twice by one node);
    x used directly too; random local derivatives, away from 0 and 1."""
    loc = lambda: float(rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 2.5))
    parents = [[], [], [],
               [[0, loc()], [1, loc()]],            # u
               [[3, loc()], [3, loc()]],            # u used twice by one operation (u * u)
               [[3, loc()], [2, loc()]],            # u shared
               [[0, loc()]],                        # x used again
               [[4, loc()], [5, loc()], [6, loc()]]]
    extra = int(rng.integers(2, 5))                 # a random tail: each node uses two earlier ones
    for _ in range(extra):
        i, j = (int(v) for v in rng.choice(len(parents), size=2, replace=False))
        parents.append([[max(i, j), loc()], [min(i, j), loc()]])
    used = {i for ps in parents for i, _ in ps}
    last = [i for i in range(len(parents)) if i not in used]  # the output depends on every node
    parents.append([[i, loc()] for i in last] + ([[int(rng.integers(0, 3)), loc()]] if len(last) < 2 else []))
    values = [float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)) for _ in parents]
    preset = [float(rng.normal(0, 3)) for _ in parents]
    return {"values": values, "parents": parents, "preset": preset}


def tape_specs(seed: int = 0, ops: Sequence[str] | None = None) -> list[OpsSpec]:
    """One spec per seed with the test's operations (as for ``Dual``, values only), and one per
    graph for ``backward``."""
    ops = list(ops or TAPE_OPS)
    rng = np.random.default_rng([seed, 7])
    out = []
    arith = [op for op in ops if op != "backward"]
    if arith:
        d = dual_specs(arith, seed)[0]
        out.append({"check": "tape", "ops": arith, "a": d["a"][0], "b": d["b"][0], "c": d["c"], "n": d["n"],
                    "k": d["k"]})
    if "backward" in ops:
        out += [{"check": "tape", "ops": ["backward"], "case": g, "graph": _tape_graph(rng)} for g in range(2)]
    return out


def _tape_expressions(spec: OpsSpec) -> list:
    """(op, text, expression, a, b) as for ``Dual``, with values only (dot 1 is not used)."""
    return [(op, text, expr, a[0], b[0])
            for op, text, expr, a, b in dual_expressions({**spec, "a": (spec["a"], 1.0), "b": (spec["b"], 1.0)})]


def _tape_partials(out: Any, leaves: list) -> list | None:
    """d out / d leaf for each leaf, by the harness's own walk of the recorded parents."""
    order, seen, stack = [], set(), [(out, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        if len(seen) > MAX_TAPE_NODES:
            return None
        stack.append((node, True))
        ps = getattr(node, "parents", ())
        for pair in ps:
            stack.append((pair[0], False))
    adj = {id(out): 1.0}
    for node in reversed(order):
        g = adj.get(id(node), 0.0)
        for p, local in getattr(node, "parents", ()):
            adj[id(p)] = adj.get(id(p), 0.0) + g * float(local)
    return [adj.get(id(v), 0.0) for v in leaves]


def _probe_tape_op(ns: Namespace, spec: OpsSpec) -> OpsRecord:
    Var = _need(ns, "Var")
    F = _env(ns)
    out = []
    for _, _, expr, a, b in _tape_expressions(spec):
        try:
            A, B = Var(a), Var(b)
            r = expr(F, A, B, spec["c"], spec["n"], spec["k"])
            item = {"operands": [[float(A.value), len(tuple(A.parents))], [float(B.value), len(tuple(B.parents))]],
                    "same": bool(r is A or r is B)}
            if not hasattr(r, "value"):
                item["value"] = float(r)
            else:
                item["value"] = float(r.value)
                partials = _tape_partials(r, [A, B])
                item["partials"] = partials if partials is None else [float(p) for p in partials]
            out.append(item)
        except (Exception, SystemExit) as e:
            out.append({"error": _err(e)})
    return {"results": out}


def _probe_tape_backward(ns: Namespace, spec: OpsSpec) -> OpsRecord:
    Var = _need(ns, "Var")
    g = spec["graph"]
    stage = "build"
    try:
        nodes = []
        for v, ps in zip(g["values"], g["parents"]):
            nodes.append(Var(v, [(nodes[i], local) for i, local in ps]))
        out = nodes[-1]
        index = {id(n): i for i, n in enumerate(nodes)}
        stage = "topological_order"
        order = [index.get(id(n), -1) for n in out.topological_order()]
        rec = {"order": order}
        stage = "backward"
        out.backward()
        rec["grads"] = [float(n.grad) for n in nodes]
        out.backward()
        rec["grads2"] = [float(n.grad) for n in nodes]
        for n, p in zip(nodes, g["preset"]):
            n.grad = p
        out.backward()
        rec["grads3"] = [float(n.grad) for n in nodes]
        return rec
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": stage}


def _probe_tape(ns: Namespace, spec: OpsSpec) -> OpsRecord:
    return _probe_tape_backward(ns, spec) if spec["ops"] == ["backward"] else _probe_tape_op(ns, spec)


def _tape_sweep(graph: dict, variant: str = "exact", order: list[int] | None = None) -> list:
    """Grads of every node after a sweep in reverse ``order`` (a topological order, default
    creation order); the variants model the classic mistakes of ``backward()``."""
    ps = graph["parents"]
    grads = [0.0] * len(ps)
    grads[-1] = 1.0
    order = list(range(len(ps)) if order is None else order)
    for i in (order if variant == "forward_order" else reversed(order)):
        for j, local in ps[i]:
            up = 1.0 if variant == "upstream_ignored" else grads[i]
            if variant == "assign":
                grads[j] = up * local
            else:
                grads[j] += up * local
    return grads


def numeric_tape_expectation(spec: OpsSpec) -> dict:
    if spec["ops"] == ["backward"]:
        g = _tape_sweep(spec["graph"])
        return {"grads": g, "rtol": RTOL, "atol": ATOL}
    out = []
    for _, _, expr, av, bv in _tape_expressions(spec):
        f = lambda x, y: expr(MATH_FUNCTIONS, x, y, spec["c"], spec["n"], spec["k"])
        with _quiet():
            out.append({"value": f(av, bv), "partials": [(f(av + H, bv) - f(av - H, bv)) / (2 * H),
                                                         (f(av, bv + H) - f(av, bv - H)) / (2 * H)]})
    return {"results": out, "rtol": RTOL, "atol": ATOL * 10}


def judge_tape_op(spec: OpsSpec, record: OpsRecord, expected: dict) -> CaseResult:
    units = ", ".join(dict.fromkeys(tape_unit(op) for op in spec["ops"]))
    got = record["results"]
    if not isinstance(got, list) or len(got) != len(expected["results"]):
        return _fail("protocol_error", units, "results missing from the record.", {"component": units})
    rtol, atol = expected["rtol"], expected["atol"]
    for (op, text, _, av, bv), g, w in zip(_tape_expressions(spec), got, expected["results"]):
        unit = tape_unit(op)
        a, b = (av, 1.0), (bv, 1.0)
        where = f"{unit} ({_dual_text(spec, text, a, b).replace('Dual(', 'Var(').replace(', 1)', ')')})"
        at = {"component": unit, "expression": text}
        if not isinstance(g, dict):
            return _fail("protocol_error", where, "malformed result.", at)
        if "error" in g:
            return _error_case({"error": g["error"]}, where, component=unit)
        if not isinstance(g.get("same"), bool):
            return _fail("protocol_error", where, "malformed result.", at)
        if g.get("same") is True or g.get("operands") != [[av, 0], [bv, 0]]:
            return _fail("tape_operand_mutated", where, f"after `{text}` the operands (value, number of parents) "
                         f"were {g.get('operands')}, not {[[av, 0], [bv, 0]]} (or the result is an operand itself).", at)
        val = g.get("value")
        if not isinstance(val, float):
            return _fail("protocol_error", where, "value missing from the record.", at)
        if not _near(val, w["value"], rtol, atol):
            rev = _dual_reversed(spec, text, a, b)
            code = "reflected_reversed" if rev and _near(val, rev[0], rtol, atol) else "tape_value_wrong"
            return _fail(code, where, f"value: expected {w['value']:.6g}, got {val:.6g}.",
                         {**at, "expected": w["value"], "got": val})
        if "partials" not in g:
            return _fail("tape_not_returned", where, f"returned the number {val:.6g}, not a Var.", at)
        parts = g["partials"]
        if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, float) for p in parts)):
            return _fail("tape_not_recorded", where, "its parents could not be read as pairs (operand, local "
                         "derivative), as the given constructor stores them.", at)
        for name, p, want in zip("ab", parts, w["partials"]):
            if name not in dual_names(text):
                continue
            if not _near(p, want, rtol, atol):
                if abs(p) <= atol and abs(want) > 10 * atol:
                    code = "tape_not_recorded"
                elif _near(p, -want, rtol, atol):
                    code = "tape_local_sign"
                else:
                    code = "tape_local_wrong"
                return _fail(code, where, f"the local derivative d({text})/d{name} recorded on the tape: expected "
                             f"{want:.6g}, got {p:.6g}.", {**at, "operand": name, "expected": want, "got": p})
    return CaseResult(True)


def _tape_order_problem(graph: dict, order: Any) -> str | None:
    ps, n = graph["parents"], len(graph["parents"])
    if not (isinstance(order, list) and all(isinstance(i, int) for i in order)):
        return "did not return a list of the graph's Vars"
    if -1 in order:
        return "contains an object that is not one of the graph's Vars"
    if len(set(order)) != len(order):
        return "lists a node more than once"
    if set(order) != set(range(n)):
        return f"lists {len(order)} of the {n} nodes the output depends on"
    pos = {i: k for k, i in enumerate(order)}
    for i in range(n):
        if any(pos[j] > pos[i] for j, _ in ps[i]):
            return "lists a node before one of its parents"
    return None


def _tape_node(graph: dict, i: int) -> str:
    """A node as the student can picture it: its place in creation order and its parents."""
    n, ps = len(graph["parents"]), graph["parents"][i]
    if i == n - 1:
        return f"the output (node {i})"
    made = f"made from nodes {sorted({j for j, _ in ps})}" if ps else "an input"
    uses = sum(j == i for qs in graph["parents"] for j, _ in qs)
    return f"node {i} ({made}, used {'once' if uses == 1 else f'{uses} times'})"


def judge_tape_backward(spec: OpsSpec, record: OpsRecord, expected: dict) -> CaseResult:
    graph = spec["graph"]
    n = len(graph["parents"])
    where = f"Var.backward (a graph of {n} Vars with shared subexpressions, case {spec.get('case', 0) + 1})"
    at = {"component": "Var.backward"}
    if "error" in record:
        stage = record.get("error_at")
        unit = "Var.topological_order" if stage == "topological_order" else "Var.backward"
        return _error_case(record, where.replace("Var.backward", unit), component=unit)
    problem = _tape_order_problem(graph, record.get("order"))
    if problem:
        return _fail("tape_order_wrong", where.replace("Var.backward", "Var.topological_order"),
                     f"topological_order() {problem}.", {"component": "Var.topological_order"})
    want = np.array(expected["grads"], dtype=float)
    rtol, atol = expected["rtol"], expected["atol"] * (1 + float(np.max(np.abs(want))))
    runs = []
    for key in ("grads", "grads2", "grads3"):
        got = record.get(key)
        if not (isinstance(got, list) and len(got) == n and all(isinstance(v, float) for v in got)):
            return _fail("protocol_error", where, f"{key} missing from the record.", at)
        runs.append(np.array(got))
    close = lambda a, b: bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))
    first = runs[0]
    if not close(first, want):
        bad = int(np.argmax(np.abs(first - want)))
        what = f"the grad of {_tape_node(graph, bad)}: expected {want[bad]:.6g}, got {first[bad]:.6g}."
        if close(first, np.zeros(n)):
            code = "tape_backward_noop"
        elif abs(first[-1] - 1.0) > atol:
            code = "tape_not_seeded"
            what = f"the output's grad is {first[-1]:.6g}, not 1."
        else:
            code = next((c for c, v in (("tape_not_accumulated", "assign"), ("tape_upstream_ignored", "upstream_ignored"),
                                        ("tape_wrong_order", "forward_order"))
                         if close(first, np.array(_tape_sweep(graph, v, record["order"])))), "tape_grads_wrong")
        return _fail(code, where, f"after backward(), {what}", {**at, "node": bad, "expected": want.tolist(),
                                                                 "got": first.tolist()})
    for label, got in (("a second backward()", runs[1]), ("backward() with every grad set to another value first", runs[2])):
        if not close(got, want):
            bad = int(np.argmax(np.abs(got - want)))
            return _fail("tape_not_zeroed", where, f"after {label}, the grad of {_tape_node(graph, bad)}: expected {want[bad]:.6g}, "
                         f"got {got[bad]:.6g}.", {**at, "node": bad, "expected": want.tolist(), "got": got.tolist()})
    return CaseResult(True)


def judge_tape(spec: OpsSpec, record: OpsRecord, expected: dict) -> CaseResult:
    units = ", ".join(tape_unit(op) for op in spec["ops"])
    try:
        if not isinstance(record, dict):
            return _fail("protocol_error", units, "the probe record is not a dict.")
        if spec["ops"] == ["backward"]:
            return judge_tape_backward(spec, record, expected)
        if "error" in record:
            return _error_case(record, units, component=units)
        return judge_tape_op(spec, record, expected)
    except Exception as e:
        return _fail("protocol_error", units, f"the probe record could not be judged ({type(e).__name__}).")


def check_tape(ns: Namespace, seed: int = 0, ops: Sequence[str] | None = None, test_id: str | None = None) -> Result:
    """``check_tape(ns, seed=0, ops=["mul", "backward"])``: each operation's value and recorded
    local derivatives; ``backward()`` on harness-built graphs."""
    with _quiet():
        verdicts = [judge_tape(s, probe(ns, s), numeric_tape_expectation(s)) for s in tape_specs(seed, ops)]
    return combine(test_id or "tape", verdicts)


def tape_suite_specs(test: dict, params: dict, ns: Namespace = None,
                     classes: Sequence[str] | None = None) -> list[OpsSpec]:
    return [s for seed in _seeds(params) for s in tape_specs(seed, params.get("ops"))]


def numeric_tape_case(ns: Namespace, spec: OpsSpec) -> CaseResult:
    return judge_tape(spec, probe(ns, spec), numeric_tape_expectation(spec))


def tape_exact(spec: OpsSpec, rec: OpsRecord) -> dict:
    if spec["ops"] == ["backward"]:
        return {"grads": rec["grads"], "rtol": RTOL_EXACT, "atol": ATOL_EXACT}
    return {"results": [{"value": r["value"], "partials": r["partials"]} for r in rec["results"]],
            "rtol": RTOL_EXACT, "atol": ATOL_EXACT}


register(Kind("tape", probe=_probe_tape, judge=judge_tape, specs=tape_suite_specs,
              numeric_case=numeric_tape_case, exact=tape_exact))
