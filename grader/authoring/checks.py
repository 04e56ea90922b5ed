"""Generate-time checks: an assignment that cannot be graded stops ``backprop generate``
with a message naming the missing piece, instead of failing later in a notebook.

- ``check_targets`` (before anything is written): every graded target is defined by the
  notebook; a component target, and every class a loop test builds graphs from, is exported
  by ``reference`` and has a contract declared beside its class.
- ``run_notebooks`` (after the release is written): the source notebook, solutions in
  place, passes every test cell (full marks); the release notebook's tests fail cleanly on
  the stubs (an ``AssertionError`` from ``report``, never a harness error), and none with
  points passes. Both run in a real kernel of this interpreter, in a scratch copy of the
  notebook's folder; experiment cells (timing, plots) are left out, as grading leaves them out.
- ``render_points`` (while the template is read): point-count markers in Markdown cells,
  ``{{points:ID,ID}}`` ("6 points"), ``{{points_n:ID}}`` ("6"), ``*`` for every test,
  take their numbers from ``suite.toml``.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .template import SuiteTest, TemplateError

if TYPE_CHECKING:
    from .course import Build

# the kinds whose target is a component class, and the test parameter naming graph classes
COMPONENT_KINDS = ("component",)
CLASSES_PARAM = "classes"
KERNEL_NAME = "backprop-generate"
CELL_TIMEOUT = 600


class GenerateCheckError(TemplateError):
    """The generated assignment would not grade as written; the message names what to fix."""


# -- targets ---------------------------------------------------------------------------------

def check_targets(b: "Build") -> None:
    """Every graded target is defined, exported and (for components) declared."""
    import reference
    from reference.contract import DECLARED

    a = b.assignment
    defined = _defined_names(a)
    problems = []
    for t in a.tests:
        where = f"suite.toml test {t.id!r}"
        if t.check in COMPONENT_KINDS:
            problems += _component_problems(where, t.target, reference, DECLARED, defined)
        for name in _graph_classes(t):
            if name not in DECLARED:
                problems.append(f"{where} builds graphs from {name}, which reference/ does not declare: "
                                f"add a contract beside its class (declare({name}, ...))")
            elif name not in defined:
                problems.append(f"{where} builds graphs from {name}, which the notebook never defines: "
                                f"pull it into a cell of {a.name}.py")
        if isinstance(t.target, str) and t.check not in COMPONENT_KINDS and t.target not in defined:
            problems.append(f"{where} grades {t.target}, which the notebook never defines: pull it into a "
                            f"[solution] or [given] cell of {a.name}.py (from=reference...:{t.target})")
    if problems:
        raise GenerateCheckError(f"{a.name}: " + "; ".join(problems))


def _component_problems(where: str, target, reference, declared: dict, defined: set[str]) -> list[str]:
    if not isinstance(target, str) or not target:
        return [f"{where} (check 'component') names no target class"]
    out = []
    if target not in declared:
        out.append(f"{where} grades {target}, which reference/ does not declare: add a contract beside "
                   f"its class (declare({target}, operands, formula, text, ...); see docs/add-a-component.md)")
    if not hasattr(reference, target):
        out.append(f"{where} grades {target}, which reference/ does not export: import it in "
                   "reference/__init__.py and add it to __all__")
    if target not in defined:
        out.append(f"{where} grades {target}, which the notebook never defines: pull it into a [solution] "
                   "cell (from=reference.<module>:" + target + ")")
    return out


def _graph_classes(t: SuiteTest) -> list[str]:
    names = []
    for params in (t.table, t.visible, t.hidden):
        value = params.get(CLASSES_PARAM) if isinstance(params, dict) else None
        if isinstance(value, (list, tuple)):
            names += [str(n) for n in value]
    return list(dict.fromkeys(names))


def _defined_names(a) -> set[str]:
    """Top-level names the notebook's given, solution and code cells define."""
    names: set[str] = set()
    for cell in a.cells:
        if cell.cell_type != "code" or cell.role in ("test", "experiment"):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as e:
            raise GenerateCheckError(f"{a.name}: cell {cell.id!r} (template line {cell.line}) is not "
                                     f"valid Python: {e.msg} (line {e.lineno})") from None
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {n.id for tgt in targets for n in ast.walk(tgt) if isinstance(n, ast.Name)}
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(al.asname or al.name).split(".")[0] for al in node.names}
    return names


# -- notebooks -------------------------------------------------------------------------------

def run_notebooks(b: "Build") -> None:
    """The source earns full marks; the release's stubs fail every test with points, cleanly."""
    with _kernelspec():
        source = _run(b.source_dir, f"{b.name}.ipynb")
        release = _run(b.release_dir, f"{b.name}.ipynb", checks_from=b.source_dir)
    points = {t.grade_id: t.points for t in b.assignment.tests}
    problems = []
    for grade_id, error in source.items():
        if grade_id in points and error:
            problems.append(f"the source notebook fails test {grade_id} ({error}): the reference's solution "
                            "must earn full marks")
    for grade_id, pts in points.items():
        if grade_id not in source:
            problems.append(f"the source notebook has no test cell {grade_id}")
    for grade_id, error in release.items():
        if grade_id not in points:
            continue
        if error is None and points[grade_id] > 0:
            problems.append(f"the release notebook passes test {grade_id} on the stubs: a test with points "
                            "must fail until the student writes the code")
        elif error and not error.startswith("AssertionError"):
            problems.append(f"the release notebook's test {grade_id} does not fail cleanly on the stubs "
                            f"({error}): a test must report a failure, not raise")
    if problems:
        raise GenerateCheckError(f"{b.name}: " + "; ".join(problems))
    b.log.append(f"checked: source notebook passes {len(points)} tests, release fails them cleanly")


def _run(folder: Path, notebook: str, checks_from: Path | None = None) -> dict[str, str | None]:
    """Execute a notebook in a scratch copy of ``folder``; each test cell's grade_id -> its
    error ("Type: message") or None. Cells run on after an error, as a student's would."""
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="backprop-generate-") as tmp:
        work = Path(tmp) / folder.name
        shutil.copytree(folder, work, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        if checks_from is not None and not (work / "backprop_checks.py").exists():
            shutil.copy2(checks_from / "backprop_checks.py", work / "backprop_checks.py")
        nb = nbformat.read(work / notebook, as_version=4)
        nb.cells = [c for c in nb.cells if not (c.get("metadata", {}).get("backprop") or {}).get("experiment")]
        try:
            NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL_NAME, allow_errors=True,
                           resources={"metadata": {"path": str(work)}}).execute()
        except Exception as e:  # the kernel died or a cell timed out: the notebook cannot be graded
            raise GenerateCheckError(f"{folder / notebook}: could not be run ({type(e).__name__}: "
                                     f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''})") from None
    out: dict[str, str | None] = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader") or {}
        if cell.cell_type != "code" or not meta.get("grade"):
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        out[meta["grade_id"]] = f"{errors[0]['ename']}: {_first_line(errors[0]['evalue'])}" if errors else None
    return out


def _first_line(text: str) -> str:
    line = (str(text).strip().splitlines() or [""])[0]
    return line if len(line) <= 200 else line[:197] + "..."


@contextlib.contextmanager
def _kernelspec():
    """A kernelspec of this interpreter, first on JUPYTER_PATH while the notebooks run."""
    with tempfile.TemporaryDirectory(prefix="backprop-kernel-") as root:
        spec = Path(root) / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--log-level=ERROR"],
            "display_name": "backprop generate", "language": "python"}))
        saved = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([root] + ([saved] if saved else []))
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = saved


# -- point counts ----------------------------------------------------------------------------

POINTS_MARKER = re.compile(r"\{\{(?P<kind>points|points_n):(?P<ids>[^}]*)\}\}")


def render_points(text: str, tests: list[SuiteTest], where: str) -> str:
    """Markdown with every ``{{points:...}}`` / ``{{points_n:...}}`` marker replaced by the
    sum of the named tests' points from suite.toml (``*``: every test)."""
    by_id = {t.id: t for t in tests}

    def number(m: re.Match) -> str:
        ids = [i.strip() for i in m["ids"].split(",") if i.strip()]
        if ids == ["*"]:
            ids = list(by_id)
        unknown = [i for i in ids if i not in by_id]
        if not ids or unknown:
            raise TemplateError(f"{where}: {m[0]} names no test of suite.toml "
                                f"({', '.join(unknown) or 'empty'}; tests: {', '.join(by_id)})")
        total = sum(by_id[i].points for i in ids)
        n = f"{total:g}"
        return n if m["kind"] == "points_n" else f"{n} point" + ("" if total == 1 else "s")

    return POINTS_MARKER.sub(number, text)
