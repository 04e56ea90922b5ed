"""The lazy student's notebooks, rendered from the release form of the assignment.

- ``stubs``: the release as handed out (every solution region ``raise NotImplementedError()``);
- ``noop``: every stub replaced by ``pass`` (functions return None);
- ``forward_only``: the ``forward`` methods done (from the reference), every other stub ``pass``;
  a class with no ``forward`` whose methods build their own class (``Dual``, ``Var``) keeps
  them with the derivative half zeroed: every constructor argument after the value becomes
  ``0.0`` (a number) or ``[]`` (a list of parents), so values are right and derivatives 0;
- ``backward_noop``: everything done except the backward half (components' ``backward``,
  ``Backward``, ``Var.backward``), which is ``pass``.

Each must earn 0 on every test owning a unit it leaves undone.
"""
from __future__ import annotations

import ast

from grader.authoring.assignment import Assignment

from .namespace import NotebookCell, notebook_cells
from .units import Unit, find_top

BASELINES = ("stubs", "noop", "forward_only", "backward_noop")


def _is_backward(qualname: str | None) -> bool:
    return bool(qualname) and qualname.split(".")[-1].lower() == "backward"


def _is_forward(qualname: str | None) -> bool:
    return bool(qualname) and qualname.split(".")[-1] == "forward"


def choose(baseline: str):
    if baseline == "stubs":
        return lambda q: "stub"
    if baseline == "noop":
        return lambda q: "pass"
    if baseline == "forward_only":
        return lambda q: "keep" if _is_forward(q) else "pass"
    if baseline == "backward_noop":
        return lambda q: "pass" if _is_backward(q) else "keep"
    raise ValueError(f"unknown baseline {baseline!r}")


def undone(baseline: str, units: list[Unit]) -> list[Unit]:
    """The units a baseline leaves undone."""
    if baseline in ("stubs", "noop"):
        return list(units)
    if baseline == "forward_only":  # every unit but forward methods (values-only duals/tapes too)
        return [u for u in units if u.method != "forward" and not _kept_whole(u)]
    return [u for u in units if u.is_backward]


def _kept_whole(u: Unit) -> bool:
    """A method of a values-only class that the transform leaves as the reference wrote it
    (``Var.backward``, ``Var.topological_order``: they build no ``Var``), so it is done."""
    if u.method is None:
        return False
    cls = find_top(u.path, u.top, u.cell)
    if not isinstance(cls, ast.ClassDef) or any(isinstance(f, ast.FunctionDef) and f.name == "forward"
                                                for f in cls.body):
        return False
    fn = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == u.method), None)
    return fn is not None and not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                                      and n.func.id == cls.name and len(n.args) > 1 for n in ast.walk(fn))


class _ZeroDerivatives(ast.NodeTransformer):
    """In the methods of class C: ``C(value, d, ...)`` -> ``C(value, 0.0, ...)``, lists -> ``[]``."""

    def __init__(self, cls: str):
        self.cls = cls

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == self.cls and len(node.args) > 1:
            node.args = node.args[:1] + [ast.List([], ast.Load()) if isinstance(a, (ast.List, ast.Tuple))
                                         else ast.Constant(0.0) for a in node.args[1:]]
        return node


def _values_only(source: str) -> str | None:
    """The cell with every self-constructing class's derivative half zeroed (None: no such class)."""
    tree = ast.parse(source)
    changed = False
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not any(
                isinstance(f, ast.FunctionDef) and f.name == "forward" for f in node.body):
            methods = [f for f in node.body if isinstance(f, ast.FunctionDef) and f.name != "__init__"]
            if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == node.name
                   for f in methods for n in ast.walk(f)):
                for f in methods:
                    _ZeroDerivatives(node.name).visit(f)
                changed = True
    return ast.unparse(ast.fix_missing_locations(tree)) if changed else None


def cells(a: Assignment, baseline: str) -> list[NotebookCell]:
    out = notebook_cells(a, choose(baseline))
    if baseline != "forward_only":
        return out
    reference = {c.id: c for c in notebook_cells(a)}
    for i, c in enumerate(out):
        if c.role == "solution":
            values = _values_only(reference[c.id].source)
            if values is not None:
                out[i] = NotebookCell(c.id, c.role, values, c.tops)
    return out
