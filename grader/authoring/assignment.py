"""An assignment as the grader sees it: cells with roles and stable ids, tests with points.

``load_assignment(name)`` runs the template pipeline (parse, pull from the reference,
mark solutions, render tests, check the suite against the test cells, assign ids and
nbgrader metadata). ``backprop generate`` writes the result as the nbgrader source
notebook; ``backprop grade`` uses ``source_cells(name)`` to match submitted cells to
source cells by id / grade_id, never trusting a submission's own metadata.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import pull
from .checks import render_points
from .template import RawCell, SuiteTest, TemplateError, load_suite, parse_template
from .tests import render_test

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENTS = REPO / "assignments"
NBGRADER_SCHEMA = 3


@dataclass(frozen=True)
class Cell:
    """One cell of the source notebook."""

    id: str               # notebook cell id (nbformat 4.5), stable across regenerations
    role: str             # markdown | given | solution | test | code | experiment
    source: str           # full source text: solutions and hidden tests included
    grade_id: str | None  # nbgrader grade_id for given/solution/test cells
    points: float | None  # test cells only
    line: int             # line of the cell's header in the template

    @property
    def cell_type(self) -> str:
        return "markdown" if self.role == "markdown" else "code"

    @property
    def nbgrader(self) -> dict | None:
        """The nbgrader (schema 3) metadata this cell carries in the source notebook."""
        if self.role in ("markdown", "code", "experiment"):
            return None
        meta = {"grade": self.role == "test", "grade_id": self.grade_id,
                "locked": self.role in ("given", "test"), "schema_version": NBGRADER_SCHEMA,
                "solution": self.role == "solution", "task": False}
        if self.role == "test":
            meta["points"] = self.points
        return meta


@dataclass
class Assignment:
    name: str
    directory: Path
    cells: list[Cell]
    tests: list[SuiteTest]
    by_id: dict[str, Cell] = field(init=False, repr=False)

    def __post_init__(self):
        self.by_id = {c.id: c for c in self.cells}

    @property
    def total_points(self) -> float:
        return sum(t.points for t in self.tests)

    def test(self, test_id: str) -> SuiteTest:
        return next(t for t in self.tests if t.id == test_id)

    def cells_with_role(self, role: str) -> list[Cell]:
        return [c for c in self.cells if c.role == role]


def discover(root: Path = ASSIGNMENTS) -> list[str]:
    """Every assignment under ``root``: a folder ``<a>/`` holding ``<a>.py`` and ``suite.toml``."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if (p / f"{p.name}.py").is_file() and (p / "suite.toml").is_file())


def load_assignment(name: str, root: Path = ASSIGNMENTS) -> Assignment:
    """Parse, pull and render an assignment's template and suite into cells with roles and ids."""
    directory = root / name
    template, suite = directory / f"{name}.py", directory / "suite.toml"
    for path in (template, suite):
        if not path.is_file():
            raise TemplateError(f"assignment {name!r}: {path} not found")
    raw = parse_template(template)
    tests = load_suite(suite, name)
    check_tests_match(raw, tests, template, suite)
    public_names = _public_names(list(dict.fromkeys(t.check for t in tests)))
    by_test = {t.id: t for t in tests}
    cells, counters = [], {}
    for rc in raw:
        where = f"{template}:{rc.line}"
        source, names = _pull_sources(rc, where)
        cell_id = _cell_id(rc, names, counters, by_test)
        if rc.role == "solution" and rc.sources:
            source = pull.mark_solution(source, keep=tuple(rc.options.get("keep", ())), where=where)
        if rc.body and rc.role != "test":
            source = f"{source}\n\n\n{rc.body}" if source else rc.body
        if rc.role == "markdown":
            source = render_points(source, tests, where)
        if rc.role == "solution" and pull.BEGIN not in source:
            raise TemplateError(f"{where}: [solution] cell has no '{pull.BEGIN}' region")
        grade_id = points = None
        if rc.role == "test":
            test = by_test[rc.options["id"]]
            source = render_test(test, rc.body, public_names)
            grade_id, points = test.grade_id, test.points
        elif rc.role in ("given", "solution"):
            grade_id = cell_id
        role = "experiment" if rc.options.get("experiment") else rc.role  # a [code] cell, not graded
        cells.append(Cell(cell_id, role, source, grade_id, points, rc.line))
    _check_unique(cells, template)
    return Assignment(name, directory, cells, tests)


def source_cells(name: str, root: Path = ASSIGNMENTS) -> dict[str, Cell]:
    """The source notebook's cells by cell id, in notebook order (what grading trusts)."""
    return {c.id: c for c in load_assignment(name, root).cells}


def check_tests_match(raw: list[RawCell], tests: list[SuiteTest], template: Path, suite: Path) -> None:
    """Every suite test has exactly one test cell, and every test cell names a suite test."""
    cell_ids = []
    for rc in raw:
        if rc.role == "test":
            if "id" not in rc.options:
                raise TemplateError(f"{template}:{rc.line}: [test] cell needs id=<suite test id>")
            cell_ids.append(rc.options["id"])
    suite_ids = [t.id for t in tests]
    problems = []
    for tid in sorted(set(cell_ids) - set(suite_ids)):
        problems.append(f"test cell id={tid} has no [[test]] with id = {tid!r} in {suite}")
    for tid in sorted(set(suite_ids) - set(cell_ids)):
        problems.append(f"suite test {tid!r} has no '# %% [test] id={tid}' cell in {template}")
    for tid in sorted({t for t in cell_ids if cell_ids.count(t) > 1}):
        problems.append(f"test id={tid} has several test cells in {template}")
    if problems:
        raise TemplateError("; ".join(problems))


def _pull_sources(rc: RawCell, where: str) -> tuple[str, list[str]]:
    texts, names = [], []
    for item in rc.sources:
        text, item_names = pull.pull(item, where)
        texts.append(text)
        names += item_names
    return "\n\n\n".join(texts), names


def _cell_id(rc: RawCell, names: list[str], counters: dict, by_test: dict) -> str:
    """A stable id from the cell's role and names; counters only for anonymous cells."""
    if rc.role == "test":
        return by_test[rc.options["id"]].grade_id
    if "id" in rc.options:
        return rc.options["id"]
    if names:
        slug = "-".join(re.sub(r"[^a-z0-9]+", "-", n.lower()).strip("-") for n in names)
        base = f"{slug}-{rc.role}" if rc.role == "solution" else f"{rc.role}-{slug}"
        if len(base) <= 64:
            return base
    counters[rc.role] = counters.get(rc.role, 0) + 1
    return f"{rc.role}-{counters[rc.role]}"


def _check_unique(cells: list[Cell], template: Path) -> None:
    seen: dict[str, Cell] = {}
    for c in cells:
        if c.id in seen:
            raise TemplateError(f"{template}:{c.line}: cell id {c.id!r} already used by the cell "
                                f"at line {seen[c.id].line}; give one of them id=...")
        seen[c.id] = c


def _public_names(kinds: list[str]) -> set[str]:
    """Top-level names of the checks bundle shipped with an assignment of these kinds
    (empty when a kind is unknown: rendering its test then names what is missing)."""
    from grader.checks.bundle import BundleError, bundle
    try:
        tree = ast.parse(bundle(kinds))
    except BundleError:
        return set()
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))} | \
        {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
