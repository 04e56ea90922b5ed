"""Branch and kink coverage of the reference's graded units under the hidden specs.

The units are instrumented through their AST (a probe at every branch outcome), so outcomes
on one line (``a if c else b``) count separately, then the reference notebook, with the
instrumented definitions in place, runs every spec of each unit's own test, seed set by
seed set. Required, under every seed set:

- code branches: both outcomes of every ``if`` / conditional expression, every loop body
  entered;
- data branches at kinks: every ordering comparison of floats (``x > 0``, ``x >= 0``),
  ``np.maximum``, ``np.minimum``, ``np.abs`` and ``abs`` sees both signs of the difference:
  within every case for arrays of more than one element, across the set's cases for scalars;
  and no ties (operands equal within 1e-9 relative: the kink itself). A comparison of
  integers (a loop bound, a rank) needs both outcomes, like a branch.
"""
from __future__ import annotations

import ast
import copy
import operator

import numpy as np

from grader.checks import probe

from .mutants import _unit_function
from .namespace import build
from .units import Unit, find_top

TIE = 1e-9
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_KINK_CALLS = {"maximum", "minimum", "abs", "absolute", "fabs"}


class Recorder:
    """Outcomes seen per site: code branches per seed set, data branches per case."""

    def __init__(self):
        self.case = ("build", 0, 0)
        self.branches: dict = {}   # (site, outcome) -> {set k}
        self.data: dict = {}       # site -> {case: [saw_neg, saw_pos, tie, size]}

    def hit(self, site, outcome, value=None):
        self.branches.setdefault((site, outcome), set()).add(self.case[1])
        return value

    def cmp(self, site, left, right, op):
        out = op(left, right)
        if np.asarray(left).dtype.kind == "f" or np.asarray(right).dtype.kind == "f":
            self._data(site, left, right)
        else:  # integers are control values, not data at a kink: both outcomes, ties allowed
            rec = self.data.setdefault(site, {}).setdefault(self.case, [False, False, False, 0])
            o = np.asarray(out)
            rec[0] |= bool(np.any(~o))
            rec[1] |= bool(np.any(o))
            rec[3] = max(rec[3], int(o.size))
        return out

    def kink(self, site, fn, *args, **kw):
        if len(args) >= 2:
            self._data(site, args[0], args[1])
        elif args:
            self._data(site, args[0], 0.0)
        return fn(*args, **kw)

    def _data(self, site, left, right):
        try:
            floating = np.asarray(left).dtype.kind == "f" or np.asarray(right).dtype.kind == "f"
            a, b = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
            d = a - b
        except (TypeError, ValueError):
            return
        rec = self.data.setdefault(site, {}).setdefault(self.case, [False, False, False, 0])
        rec[0] |= bool(np.any(d < 0))
        rec[1] |= bool(np.any(d > 0))
        with np.errstate(all="ignore"):
            rec[2] |= floating and bool(np.any(np.abs(d) <= TIE * (1 + np.abs(b))))
        rec[3] = max(rec[3], int(d.size))


class _Instrument(ast.NodeTransformer):
    def __init__(self, unit: Unit, line_offset: int):
        self.unit, self.offset, self.sites = unit, line_offset, []

    def _site(self, node, kind, text):
        sid = f"{self.unit.name}:{kind}@{node.lineno + self.offset}:{node.col_offset}"
        self.sites.append({"site": sid, "kind": kind, "line": node.lineno + self.offset, "text": text})
        return sid

    @staticmethod
    def _call(name, *args):
        return ast.Call(ast.Attribute(ast.Name("__audit__", ast.Load()), name, ast.Load()), list(args), [])

    def visit_If(self, node):
        sid = self._site(node, "if", ast.unparse(node.test)[:60])
        self.generic_visit(node)
        node.body.insert(0, ast.Expr(self._call("hit", ast.Constant(sid), ast.Constant(True))))
        node.orelse = [ast.Expr(self._call("hit", ast.Constant(sid), ast.Constant(False)))] + node.orelse
        return node

    def visit_IfExp(self, node):
        sid = self._site(node, "ifexp", ast.unparse(node.test)[:60])
        self.generic_visit(node)
        node.body = self._call("hit", ast.Constant(sid), ast.Constant(True), node.body)
        node.orelse = self._call("hit", ast.Constant(sid), ast.Constant(False), node.orelse)
        return node

    def _loop(self, node):
        sid = self._site(node, "loop", ast.unparse(node.iter if isinstance(node, ast.For) else node.test)[:60])
        self.generic_visit(node)
        node.body.insert(0, ast.Expr(self._call("hit", ast.Constant(sid), ast.Constant("body"))))
        return node

    visit_For = visit_While = _loop

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            sid = self._site(node, "kink", ast.unparse(node)[:60])
            op = ast.Attribute(ast.Name("__audit_ops__", ast.Load()), type(node.ops[0]).__name__, ast.Load())
            return self._call("cmp", ast.Constant(sid), node.left, node.comparators[0], op)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if name in _KINK_CALLS:
            sid = self._site(node, "kink", ast.unparse(node)[:60])
            call = self._call("kink", ast.Constant(sid), f, *node.args)
            call.keywords = node.keywords
            return call
        return node


class _Ops:
    Lt, LtE, Gt, GtE = operator.lt, operator.le, operator.gt, operator.ge


def instrument(units: list[Unit]) -> tuple[dict, dict]:
    """({top name: instrumented source}, {unit name: [sites]})."""
    tops: dict = {}
    sites: dict = {}
    by_top: dict = {}
    for u in units:
        by_top.setdefault((u.top, u.path, u.cell), []).append(u)
    for (top, path, cell), us in by_top.items():
        tree = copy.deepcopy(find_top(path, top, cell))
        for u in us:
            fn, _ = _unit_function(tree, u)
            offset = u.line - fn.lineno
            ins = _Instrument(u, offset)
            fn.body = [ins.visit(s) for s in fn.body]
            sites[u.name] = ins.sites
        ast.fix_missing_locations(tree)
        tops[top] = ast.unparse(tree)
    return tops, sites


def measure(ctx, units: list[Unit], only: str | None = None) -> dict:
    """Coverage per unit (percent and gaps) of the reference under its own test's hidden specs."""
    units = [u for u in units if not only or only in (u.name, u.top, u.test)]
    tops, sites = instrument(units)
    rec = Recorder()
    ns, errors = build(ctx.cells, tops, preset={"__audit__": rec, "__audit_ops__": _Ops})
    if errors:
        raise RuntimeError(f"{ctx.name}: the instrumented reference fails: {errors}")
    tests = {u.test for u in units}
    build_hits = {k: v for k, v in rec.branches.items()}
    for t in ctx.tests:
        if t["id"] not in tests:
            continue
        for k in range(ctx.n_sets):
            src = ctx.same_as.get((t["id"], k), k)
            table, specs = ctx.specs[(t["id"], src)]
            for i, spec in enumerate(copy.deepcopy(specs)):
                rec.case = (t["id"], k, i)
                probe(ns, spec)
    out, total, covered = [], 0, 0
    for u in units:
        gaps, n, ok = [], 0, 0
        for s in sites[u.name]:
            sid = s["site"]
            if s["kind"] in ("if", "ifexp", "loop"):
                outcomes = ["body"] if s["kind"] == "loop" else [True, False]
                for o in outcomes:
                    n += 1
                    seen = rec.branches.get((sid, o), set())
                    missing = [k for k in range(ctx.n_sets) if k not in seen and 0 not in build_hits.get((sid, o), ())]
                    if missing:
                        what = "loop body never entered" if o == "body" else f"`{s['text']}` never {o}"
                        gaps.append(f"{sid}: {what} (seed sets {missing})")
                    else:
                        ok += 1
            else:
                n += 1
                problem = _kink_gap(rec.data.get(sid, {}), u.test, ctx.n_sets)
                if problem:
                    gaps.append(f"{sid}: `{s['text']}` {problem}")
                else:
                    ok += 1
        total, covered = total + n, covered + ok
        out.append({"name": u.name, "test": u.test, "branches": n, "covered": ok,
                    "percent": round(100.0 * ok / n, 1) if n else 100.0, "gaps": gaps})
    return {"units": out, "branches": total, "covered": covered,
            "percent": round(100.0 * covered / total, 1) if total else 100.0}


def _kink_gap(cases: dict, test: str, n_sets: int) -> str | None:
    for k in range(n_sets):
        mine = {c: v for c, v in cases.items() if c[0] == "build" or (c[1] == k and c[0] == test)}
        if not mine:
            return f"never evaluated (seed set {k})"
        if any(v[2] for v in mine.values()):
            c = next(c for c, v in mine.items() if v[2])
            return f"has a tie (the kink itself) in case {c[2]} of seed set {k}"
        arrays = {c: v for c, v in mine.items() if v[3] > 1}
        for c, v in arrays.items():
            if not (v[0] and v[1]):
                side = "positive" if v[1] else "negative"
                return f"sees only {side} differences in case {c[2]} of seed set {k}"
        scalars = [v for v in mine.values() if v[3] <= 1]
        if scalars and not (any(v[0] for v in scalars) and any(v[1] for v in scalars)):
            side = "positive" if any(v[1] for v in scalars) else "negative"
            return f"sees only {side} differences over the scalar cases of seed set {k}"
    return None
