"""Every assignment under assignments/ generates an nbgrader course that works end to end.

Real kernels (nbclient) and a real nbgrader course: the source notebook passes its own
tests, the release notebook is all stubs and failing tests, nothing secret is released,
nbgrader's autograde gives full and zero marks, and regeneration is byte-identical.
"""
from __future__ import annotations

import ast
import json
import re
import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader.authoring import generate, load_assignment
from grader.authoring.course import CHECKS_MODULE, assignment_kinds, checks_module_text, scripts_on_path
from grader.authoring.pull import BEGIN, END
from grader.authoring.tests import BEGIN_HIDDEN, END_HIDDEN

from .conftest import ASSIGNMENTS, STUDENT_FULL, STUDENT_ZERO, copy_assignment, run_notebook, snapshot

pytestmark = pytest.mark.parametrize("name", ASSIGNMENTS)


def _errors(cell) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]


def _grade_ids(nb, *, grade: bool) -> list[str]:
    return [c.metadata.nbgrader["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") is grade]


def test_source_notebook_passes_its_tests(name, course, tmp_path):
    course.require(name)
    work = copy_assignment(course.path / "source" / name, tmp_path / name)
    nb = run_notebook(work / f"{name}.ipynb", work, allow_errors=True)
    failures = {c.id: _errors(c) for c in nb.cells if _errors(c)}
    assert not failures, f"cells of the source notebook raised: {failures}"
    assert _grade_ids(nb, grade=True) == [t.grade_id for t in load_assignment(name).tests]


STUB = "raise NotImplementedError()"


def _stubs(nb) -> tuple[list[tuple[str | None, str]], list[str]]:
    """Functions whose body is the nbgrader stub, as (class or None, name), and the ids of
    solution cells with a top-level stub (free solution code, raising when the cell runs)."""
    functions, cells = [], []
    for cell in nb.cells:
        if not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        tree = ast.parse(cell.source)
        if any(ast.unparse(node) == STUB for node in tree.body):
            cells.append(cell.id)
        for node in tree.body:
            funcs = [(None, node)] if isinstance(node, ast.FunctionDef) else \
                [(node.name, f) for f in node.body if isinstance(f, ast.FunctionDef)] \
                if isinstance(node, ast.ClassDef) else []
            for owner, f in funcs:
                body = [s for s in f.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
                if len(body) == 1 and ast.unparse(body[0]) == STUB:
                    functions.append((owner, f.name))
    return functions, cells


CALL_STUBS = """
import inspect as _inspect, json as _json
_outcome = {}
for _owner, _name in %r:
    try:
        _f = globals()[_name] if _owner is None else globals()[_owner].__dict__[_name]
    except KeyError:
        _outcome[f"{_owner}.{_name}"] = "missing"
        continue
    _f = getattr(_f, "__func__", _f)  # staticmethod / classmethod
    _params = [p for p in _inspect.signature(_f).parameters.values()
               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    try:
        _f(*[None] * len(_params))
        _outcome[f"{_owner}.{_name}"] = "returned"
    except NotImplementedError:
        _outcome[f"{_owner}.{_name}"] = "NotImplementedError"
    except Exception as _e:
        _outcome[f"{_owner}.{_name}"] = type(_e).__name__
print(_json.dumps(_outcome))
"""


def test_release_is_stubs_and_failing_tests(name, course, tmp_path):
    course.require(name)
    source = nbformat.read(course.path / "source" / name / f"{name}.ipynb", as_version=4)
    work = copy_assignment(course.path / "release" / name, tmp_path / name)
    release = nbformat.read(work / f"{name}.ipynb", as_version=4)
    stubs, stub_cells = _stubs(release)
    regions = sum(c.source.count(BEGIN) for c in source.cells)
    assert len(stubs) + len(stub_cells) == regions, "every solution region becomes exactly one stub"

    # executes top to bottom without killing the kernel (nbclient raises if it dies)
    nb = run_notebook(work / f"{name}.ipynb", work, allow_errors=True, extra_cells=[CALL_STUBS % stubs])
    outcome = json.loads(nb.cells[-1].outputs[0].text)
    assert set(outcome.values()) <= {"NotImplementedError"}, outcome
    by_id = {c.id: c for c in nb.cells}
    for cell_id in stub_cells:
        assert any(e.startswith("NotImplementedError") for e in _errors(by_id[cell_id])), cell_id
    # nbgrader validate --invert: every autograded test cell fails on the release
    passing = [c.id for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and not _errors(c)]
    assert not passing, f"test cells that pass on the unmodified release: {passing}"


def _solution_lines(source_nb) -> set[str]:
    """Non-trivial lines between solution markers, minus lines already public in given/test code."""
    public = {line.strip() for c in source_nb.cells if c.cell_type == "code"
              and not c.metadata.get("nbgrader", {}).get("solution") for line in c.source.splitlines()}
    lines = set()
    for c in source_nb.cells:
        inside = False
        for line in c.source.splitlines():
            s = line.strip()
            if s == BEGIN:
                inside = True
            elif s == END:
                inside = False
            elif inside and len(s) >= 12 and not s.startswith("#") and s not in public:
                lines.add(s)
    return lines


def _hidden_lines(source_nb) -> set[str]:
    """Lines of the hidden-test regions that appear nowhere else in the source notebook
    (a hidden parameter list equal to the visible one is not a secret)."""
    hidden, rest = set(), set()
    for c in source_nb.cells:
        pattern = f"{BEGIN_HIDDEN}(.*?){END_HIDDEN}"
        for m in re.finditer(pattern, c.source, re.S):
            hidden |= {s.strip() for s in m.group(1).splitlines() if len(s.strip()) >= 12}
        rest |= {s.strip() for s in re.sub(pattern, "", c.source, flags=re.S).splitlines()}
    return hidden - rest


def _leaks(secrets: set[str], text: str) -> list[str]:
    """Secrets found in ``text``: as a whole line, or anywhere when long enough to be
    unambiguous (short lines such as ``self.x.grad += self.grad`` are prefixes of prose)."""
    lines = {line.strip() for line in text.splitlines()}
    return sorted(s for s in secrets if s in lines or (len(s) >= 40 and s in text))


def test_release_contains_no_solution_and_no_hidden_tests(name, course):
    course.require(name)
    release_dir = course.path / "release" / name
    assert sorted(p.name for p in release_dir.iterdir()) == sorted([f"{name}.ipynb", CHECKS_MODULE])
    source = nbformat.read(course.path / "source" / name / f"{name}.ipynb", as_version=4)
    release = nbformat.read(release_dir / f"{name}.ipynb", as_version=4)
    text = "\n".join(c.source for c in release.cells) + json.dumps(release.metadata)
    secrets = _solution_lines(source) | _hidden_lines(source)
    assert _solution_lines(source), "the source has solution code to look for"
    leaked = _leaks(secrets, text)
    assert not leaked, f"solution or hidden-test lines in the release notebook: {leaked}"
    for marker in (BEGIN, END, BEGIN_HIDDEN, END_HIDDEN, "run_hidden", "grader.checks",
                   "import reference", "from reference"):
        assert marker not in text, marker
    checks = (release_dir / CHECKS_MODULE).read_text()
    kinds = assignment_kinds(name)
    assert checks == checks_module_text(kinds), "the shipped checks are exactly the bundle of the suite's kinds"
    if "component" not in kinds:  # a release ships only the check kinds its suite uses
        assert "def check_component" not in checks and "def _probe_backward" not in checks
    for marker in (BEGIN_HIDDEN, "run_hidden", "import reference", "from reference", "grader.checks.hidden"):
        assert marker not in checks, marker
    for region in _solution_regions(source):  # whole solution bodies, wherever they might be
        assert region not in checks


def _solution_regions(source_nb) -> list[str]:
    return [m.group(1).strip() for c in source_nb.cells
            for m in re.finditer(f"{BEGIN}\n(.*?){END}", c.source, re.S) if m.group(1).count("\n") > 1]


def test_autograde_full_marks_for_source_zero_for_release(name, autograded):
    autograded.require(name)
    assert f"autograde:{name}" not in autograded.errors, autograded.errors.get(f"autograde:{name}")
    with scripts_on_path(), Gradebook(f"sqlite:///{autograded.path / 'gradebook.db'}",
                                      course_id="backprop-course") as gb:
        assignment = gb.find_assignment(name)
        expected = load_assignment(name).total_points
        assert assignment.max_score == pytest.approx(expected)
        full = gb.find_submission(name, STUDENT_FULL)
        zero = gb.find_submission(name, STUDENT_ZERO)
        failed = {g.name: g.score for g in full.notebooks[0].grades if g.score != g.max_score}
        assert full.score == pytest.approx(expected), f"tests losing points on the solution: {failed}"
        assert zero.score == 0


@pytest.fixture(scope="module")
def regenerated(course, tmp_path_factory) -> dict:
    """A second run of every assignment: into a fresh course directory, and in place over
    a copy of the first course (not its gradebook: autograde may be writing it)."""
    fresh, in_place = tmp_path_factory.mktemp("fresh"), tmp_path_factory.mktemp("again")
    shutil.copytree(course.path, in_place, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
        "submitted", "autograded", "feedback", "__pycache__", "gradebook.db*", "nbgrader_config.py"))
    for name in ASSIGNMENTS:
        if name not in course.errors:
            for target in (fresh, in_place):
                generate([name], target)
    return {"fresh": snapshot(fresh), "in place": snapshot(in_place)}


def test_regeneration_is_byte_identical(name, course, regenerated):
    course.require(name)
    first = {k: v for k, v in course.snapshot.items() if f"/{name}/" in f"/{k}"}
    assert any(k.endswith(".ipynb") for k in first)
    for run, files in regenerated.items():
        again = {k: v for k, v in files.items() if f"/{name}/" in f"/{k}"}
        assert sorted(again) == sorted(first), run
        different = [k for k in first if first[k] != again[k]]
        assert not different, f"regeneration ({run}) changed {different}"
