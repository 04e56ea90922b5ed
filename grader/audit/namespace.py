"""A notebook's namespace, built in-process from an assignment's own cells.

The given and solution cells run in notebook order in a fresh dict, as a kernel would run
them (experiment ``[code]`` cells and test cells are skipped: nothing graded depends on
them). Solution cells come in one of the forms a student can hand in:

- ``source``: the reference solution;
- ``release``: each ``### BEGIN/END SOLUTION`` region replaced as nbgrader's release does
  (``raise NotImplementedError()``), or by ``pass``, region by region (a lazy student's
  notebook, see ``baselines``).

A mutant replaces one top-level definition: its source runs right after the cell that
defines that name, before any later cell uses it (the training cell of ``mlp_training``
trains with the mutated routines). Only trusted code runs here: the reference, the
template and mutants derived from them.
"""
from __future__ import annotations

import ast
import contextlib
import functools
import io
import time
from dataclasses import dataclass
from typing import Callable

from grader.authoring.assignment import Assignment
from grader.authoring.pull import BEGIN, END

STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")


@dataclass(frozen=True)
class NotebookCell:
    id: str
    role: str
    source: str
    tops: frozenset  # top-level names the cell defines


def _tops(source: str) -> frozenset:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset()
    out = set()
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.Assign):
            out.update(t.id for t in n.targets if isinstance(t, ast.Name))
    return frozenset(out)


def _enclosing(source: str) -> dict[int, str]:
    """1-based line -> qualified name of the innermost def holding it (``Class.method``)."""
    tree = ast.parse(source)
    out: dict[int, str] = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if isinstance(child, ast.FunctionDef):
                    for line in range(child.lineno, child.end_lineno + 1):
                        out[line] = name
                visit(child, name + ".")
            else:
                visit(child, prefix)
    visit(tree, "")
    return out


def render_solution(source: str, choose: Callable[[str | None], str]) -> str:
    """A solution cell with each marked region kept, stubbed or made a no-op.

    ``choose(qualname)`` returns "keep", "stub" (nbgrader's release) or "pass" for the region
    inside the definition ``qualname`` (None: a region of module-level statements).
    """
    lines = source.splitlines()
    where = _enclosing(source)
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == BEGIN:
            j = next(k for k in range(i + 1, len(lines)) if lines[k].strip() == END)
            indent = line[:len(line) - len(line.lstrip())]
            how = choose(where.get(i + 1))
            if how == "keep":
                out += lines[i + 1:j]
            elif how == "stub":
                out += [indent + s for s in STUB]
            elif how == "pass":
                out.append(indent + "pass")
            else:
                raise ValueError(f"unknown region choice {how!r}")
            i = j + 1
        else:
            out.append(line)
            i += 1
    return "\n".join(out)


def notebook_cells(a: Assignment, choose: Callable[[str | None], str] | None = None) -> list[NotebookCell]:
    """The given and solution cells, solutions rendered by ``choose`` (default: the reference)."""
    choose = choose or (lambda q: "keep")
    out = []
    for c in a.cells:
        if c.role == "given":
            out.append(NotebookCell(c.id, c.role, c.source, _tops(c.source)))
        elif c.role == "solution":
            src = render_solution(c.source, choose)
            out.append(NotebookCell(c.id, c.role, src, _tops(src)))
    return out


@functools.lru_cache(maxsize=256)
def _compiled(source: str, filename: str):
    """A cell's code, compiled once: every mutant's namespace runs the same cells (a code
    object is immutable; each run gets its own namespace)."""
    return compile(source, filename, "exec")


def build(cells: list[NotebookCell], overrides: dict[str, str] | None = None,
          preset: dict | None = None, timings: dict | None = None,
          on_cell: Callable[[str], None] | None = None) -> tuple[dict, list[str]]:
    """Run the cells (and overriding definitions) in a fresh namespace: (ns, cell errors).

    A cell that raises is recorded and the next cells still run, as in grading. ``preset``
    names are in the namespace before the first cell (the coverage probes). ``timings``
    receives each cell's CPU seconds; ``on_cell`` is told each cell's id before it runs.
    """
    overrides = dict(overrides or {})
    ns: dict = {"__name__": "__main__", **(preset or {})}
    errors: list[str] = []
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells:
            if on_cell is not None:
                on_cell(cell.id)
            start = time.process_time()
            try:
                exec(_compiled(cell.source, f"<cell {cell.id}>"), ns)
            except Exception as e:  # a student's failure is data
                errors.append(f"{cell.id}: {type(e).__name__}: {e}")
            if timings is not None:
                timings[cell.id] = time.process_time() - start
            for top in sorted(cell.tops & overrides.keys()):
                try:
                    exec(compile(overrides.pop(top), f"<mutant {top}>", "exec"), ns)
                except Exception as e:
                    errors.append(f"{cell.id} ({top}): {type(e).__name__}: {e}")
    return ns, errors
