"""Course-wide: does a notebook's given code hand out another assignment's graded solution?

Against the course's order of assignments, the given (locked) cells of each released
notebook are compared, function by function and method by method, with the graded units of
every other assignment: bodies compared by AST, docstrings aside (names and formatting do
not matter). A unit of a LATER assignment found in given code is a leak (the criterion
``no_leaks``); a unit of an EARLIER assignment is an extension, listed for the instructor
(fine once the earlier assignment is due).
"""
from __future__ import annotations

import ast
from pathlib import Path

from grader.authoring.assignment import ASSIGNMENTS, discover

from .units import assignment, find_top, graded_units
from .mutants import _unit_function

DEFAULT_ORDER = ("scalar_backprop", "forward_mode", "tensor_edf", "mlp_training")


def course_order(order=None, root: Path = ASSIGNMENTS) -> list[str]:
    """The declared order, then the course's other assignments alphabetically."""
    present = discover(root)
    head = [a for a in (order or DEFAULT_ORDER) if a in present]
    return head + sorted(a for a in present if a not in head)


def body_key(fn: ast.FunctionDef) -> str:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return ast.dump(ast.Module(body=body, type_ignores=[]))


def given_functions(a) -> list[tuple[str, str, str]]:
    """(cell id, qualified name, body key) of every def in the notebook's given cells."""
    out = []
    for c in a.cells:
        if c.role != "given":
            continue
        tree = ast.parse(c.source)

        def visit(node, prefix):
            for n in ast.iter_child_nodes(node):
                if isinstance(n, ast.FunctionDef):
                    out.append((c.id, prefix + n.name, body_key(n)))
                    visit(n, prefix + n.name + ".")
                elif isinstance(n, ast.ClassDef):
                    visit(n, prefix + n.name + ".")
        visit(tree, "")
    return out


def check(order=None, only: str | None = None, root: Path = ASSIGNMENTS) -> dict:
    names = course_order(order, root)
    loaded = {n: assignment(n, root) for n in names}
    units = {n: graded_units(loaded[n]) for n in names}
    keys = {n: [(u, body_key(_unit_function(find_top(u.path, u.top, u.cell), u)[0])) for u in units[n]]
            for n in names}
    leaks, extensions = [], []
    for i, giver in enumerate(names):
        given = given_functions(loaded[giver])
        for j, owner in enumerate(names):
            if i == j or (only and only not in (giver, owner)):
                continue
            for u, key in keys[owner]:
                for cell, qual, gkey in given:
                    if gkey == key:
                        item = {"given_in": giver, "cell": cell, "name": qual, "unit": u.name,
                                "unit_of": owner, "test": u.test}
                        (leaks if j > i else extensions).append(item)
    return {"order": names, "leaks": leaks, "extensions": extensions}


def criterion(result: dict) -> dict:
    return {"ok": not result["leaks"], "failures": len(result["leaks"]), "enforced": True,
            "what": "no released notebook's given code contains a later assignment's graded solution",
            "detail": [f"{x['given_in']} (cell {x['cell']}) gives {x['unit_of']}'s {x['unit']} "
                       f"(test {x['test']})" for x in result["leaks"]]}


def text(result: dict) -> str:
    lines = [f"leak check, course order: {', '.join(result['order'])}"]
    for x in result["leaks"]:
        lines.append(f"  LEAK: {x['given_in']} (given cell {x['cell']}, {x['name']}) contains the solution of "
                     f"{x['unit_of']}'s {x['unit']} (test {x['test']})")
    for x in result["extensions"]:
        lines.append(f"  extension: {x['given_in']} (given cell {x['cell']}, {x['name']}) gives "
                     f"{x['unit_of']}'s {x['unit']} (test {x['test']}), an earlier assignment's solution")
    if not result["leaks"]:
        lines.append("  no leaks")
    return "\n".join(lines)
