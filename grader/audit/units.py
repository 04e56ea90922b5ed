"""The graded units of an assignment, each owned by exactly one test.

A unit is a function, or a method of a class, whose body is a solution in the notebook (a
``[solution]`` cell's definitions, ``keep=`` methods excepted). Its owner is derived, never
listed by hand:

1. a cell whose names include a test's ``target``: that test (for ``dual`` and ``tape`` tests,
   the test whose ``ops`` name the method, ``add`` -> ``__add__``, ``exp`` -> ``exp``,
   ``backward`` -> ``Var.backward``; a method bound to another name in the class body,
   ``__radd__ = __add__``, is graded by both names);
2. a helper no op names (``Dual.lift``, ``Var.topological_order``): the owner of the
   methods that call it, if they all have the same one;
3. a cell without a target (the training routines): the next test cell of the template.

A unit two tests claim, or none, is a configuration error the audit reports.
"""
from __future__ import annotations

import ast
import copy
import functools
import importlib
from dataclasses import dataclass
from pathlib import Path

from grader.authoring.assignment import ASSIGNMENTS, REPO, Assignment, load_assignment
from grader.authoring.template import parse_template

# dual ``ops`` -> the Dual method an op calls
DUAL_OP_METHODS = {
    "add": "__add__", "radd": "__radd__", "sub": "__sub__", "rsub": "__rsub__", "mul": "__mul__",
    "rmul": "__rmul__", "div": "__truediv__", "rdiv": "__rtruediv__", "pow": "__pow__", "neg": "__neg__",
    "exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "sigmoid": "sigmoid", "tanh": "tanh",
    "backward": "backward",  # tape tests: Var.backward (and the helpers it calls)
}
OP_CHECKS = ("dual", "tape")  # kinds whose tests name the methods they grade in ``ops``


class UnitError(Exception):
    """The units of an assignment cannot be mapped to its tests unambiguously."""


@dataclass(frozen=True)
class Unit:
    name: str            # "Sigmoid.backward", "Backward", "train"
    top: str             # the top-level definition holding it ("Sigmoid", "Backward")
    method: str | None   # the method name, None for a function
    test: str            # id of the owning test
    check: str           # the owning test's check kind
    cell: str            # id of the solution cell defining it
    path: str            # file of its code, relative to the repository
    line: int            # line of its ``def`` in that file
    origin: str          # "reference" (pulled by name) or "template" (free solution cell)

    @property
    def is_backward(self) -> bool:
        """The derivative half of a component, the loop, or the tape's backward."""
        return (self.method or self.top).lower() == "backward"


@dataclass(frozen=True)
class Definition:
    """A top-level class or function of a solution cell, with the AST it comes from."""

    name: str
    cell: str
    path: str            # relative to REPO
    line_offset: int     # added to the AST's line numbers to get the file's
    origin: str
    keep: tuple

    def node(self) -> ast.AST:
        return find_top(self.path, self.name, self.cell)


@functools.lru_cache(maxsize=None)
def _file_ast(path: str) -> ast.Module:
    return ast.parse((REPO / path).read_text(encoding="utf-8"), filename=path)


_CELL_SOURCES: dict = {}


def find_top(path: str, name: str, cell: str | None = None) -> ast.AST:
    """The top-level def/class ``name`` of a reference file (or a registered cell source)."""
    tree = _CELL_SOURCES.get((path, cell)) or _file_ast(path)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return node
    raise UnitError(f"{path}: no top-level definition {name!r}")


def _relative(path: Path) -> str:
    """The path relative to the repository (absolute for a course outside it)."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _module_path(module: str) -> str:
    return _relative(Path(importlib.import_module(module).__file__).resolve())


def definitions(a: Assignment) -> list[Definition]:
    """Every top-level class/function of the assignment's solution cells, in notebook order."""
    raw = parse_template(a.directory / f"{a.name}.py")
    if len(raw) != len(a.cells):
        raise UnitError(f"{a.name}: template cells and loaded cells differ in number")
    out = []
    for rc, cell in zip(raw, a.cells):
        if cell.role != "solution":
            continue
        keep = tuple(rc.options.get("keep", ()))
        items = [s for s in rc.sources if ":" in s and "#" not in s]
        if items:
            for item in items:
                module, _, names = item.partition(":")
                path = _module_path(module)
                for name in names.split(","):
                    find_top(path, name)
                    out.append(Definition(name, cell.id, path, 0, "reference", keep))
        else:
            path = _relative((a.directory / f"{a.name}.py").resolve())
            tree = ast.parse(cell.source)
            _CELL_SOURCES[(path, cell.id)] = tree
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    out.append(Definition(node.name, cell.id, path, cell.line, "template", keep))
    return out


def _aliases(cls: ast.ClassDef) -> dict[str, str]:
    """``__radd__ = __add__`` in a class body: alias -> method."""
    out = {}
    for node in cls.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value.id
    return out


def _calls(fn: ast.FunctionDef) -> set[str]:
    """Names a function refers to as attributes or plain names (``Dual.lift``, ``self.f``)."""
    out = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.Name):
            out.add(n.id)
    return out


def graded_units(a: Assignment) -> list[Unit]:
    """The assignment's units with their owning tests (raises ``UnitError`` if ambiguous)."""
    tests = a.tests
    test_cells = [c for c in a.cells if c.role == "test"]
    cell_pos = {c.id: i for i, c in enumerate(a.cells)}
    by_target: dict[str, list] = {}
    for t in tests:
        if t.target:
            by_target.setdefault(t.target, []).append(t)
    defs = definitions(a)
    names_by_cell: dict[str, set] = {}
    for d in defs:
        names_by_cell.setdefault(d.cell, set()).add(d.name)

    def next_test(cell_id):
        pos = cell_pos[cell_id]
        for c in test_cells:
            if cell_pos[c.id] > pos:
                return a.test(c.id[len("test_"):])
        raise UnitError(f"{a.name}: solution cell {cell_id} has no test cell after it")

    units: list[Unit] = []
    for d in defs:
        node = d.node()
        targets = [t for n in sorted(names_by_cell[d.cell]) for t in by_target.get(n, [])]
        if isinstance(node, ast.FunctionDef):
            members = [(None, node)]
        else:
            members = [(f.name, f) for f in node.body
                       if isinstance(f, ast.FunctionDef) and f.name not in d.keep]
        aliases = _aliases(node) if isinstance(node, ast.ClassDef) else {}
        owners: dict = {}
        for method, fn in members:
            if not targets:
                owners[method] = next_test(d.cell)
            elif any(t.check in OP_CHECKS for t in targets):
                names = {method} | {al for al, m in aliases.items() if m == method}
                claim = [t for t in targets if t.check in OP_CHECKS and any(
                    DUAL_OP_METHODS.get(op) in names for op in (t.hidden.get("ops") or DUAL_OP_METHODS))]
                if len(claim) > 1:
                    raise UnitError(f"{a.name}: {d.name}.{method} is graded by several tests: "
                                    f"{', '.join(t.id for t in claim)}")
                owners[method] = claim[0] if claim else None
            else:
                if len(targets) > 1:
                    raise UnitError(f"{a.name}: cell {d.cell} is the target of several tests: "
                                    f"{', '.join(t.id for t in targets)}")
                owners[method] = targets[0]
        # helpers no op names: the owner of their callers
        for method, fn in members:
            if owners[method] is not None:
                continue
            callers = {owners[m] .id for m, f in members
                       if m != method and owners[m] is not None and method in _calls(f)}
            if len(callers) != 1:
                raise UnitError(f"{a.name}: cannot tell which test grades {d.name}.{method} "
                                f"(called from tests {sorted(callers) or 'none'})")
            owners[method] = a.test(callers.pop())
        for method, fn in members:
            t = owners[method]
            units.append(Unit(name=f"{d.name}.{method}" if method else d.name, top=d.name, method=method,
                              test=t.id, check=t.check, cell=d.cell, path=d.path,
                              line=fn.lineno + d.line_offset, origin=d.origin))
    return units


_LOADED: dict = {}


def _stamp(*dirs: Path) -> tuple:
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size)
                 for d in dirs if d.is_dir() for f in sorted(d.iterdir()) if f.is_file())


def assignment(name: str, root: Path = ASSIGNMENTS) -> Assignment:
    """``load_assignment``, once per process while its files are unchanged (a copy each time).

    An audit of the course loads every assignment several times (its units, its specs, the
    leak check of each one against all the others): about 2 s each, mostly rendering the
    checks bundle, is then paid once. The template, the suite, the reference and the check
    modules are all in the key (file, modification time and size)."""
    root = Path(root)
    key = (name, str(root.resolve()), _stamp(root / name, REPO / "reference", REPO / "grader" / "checks"))
    if key not in _LOADED:
        _LOADED[key] = load_assignment(name, root)
    return copy.deepcopy(_LOADED[key])


def load(name: str, root: Path = ASSIGNMENTS) -> tuple[Assignment, list[Unit]]:
    a = assignment(name, root)
    return a, graded_units(a)
