"""The trusted side of one assignment: source cells with roles, suite tests, checks.

Everything here lives in the parent only. The child receives the public checks' source
and the student's code, nothing else.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.runner import Wire

from .notebook import SourceCell

REPO = Path(__file__).resolve().parents[2]
CHECKS_DIR = REPO / "grader" / "checks"
DATA_CELL = "load-data"   # the mlp notebooks' given data cell, replaced by parent injection


class ContextError(Exception):
    """The assignment cannot be graded (missing template/suite/checks); a TA-facing message."""


@dataclass
class Checks:
    """The three trusted entry points grading needs (``grader.checks`` by default)."""

    public_source: str                      # sent into the child as module ``backprop_checks``
    build_specs: object                     # (test_table, "hidden") -> list[spec]
    judge: object                           # (test_table, specs, records) -> Result
    result_cls: object = None               # Result, to build runner-failure verdicts
    fingerprint: str = ""


@dataclass
class Context:
    name: str
    cells: list[SourceCell]
    tests: list[dict]                       # suite.toml [[test]] tables, in suite order
    checks: Checks
    course: Path | None = None
    origin: str = ""                        # where the cell roles came from
    fingerprint: str = field(default="")

    _specs: dict = field(default_factory=dict, repr=False)

    def specs(self, test: dict, key: int | None = None) -> tuple[list, Wire]:
        """The test's hidden specs under a submission's ``key`` (``grading.seeds``; None: the
        suite's own seeds, built and encoded once per batch). Returns (specs, the same specs
        as wire data for the child)."""
        if key is not None:  # a submission's own cases: built for it alone, never kept
            from grader.checks.hidden import seeded

            specs = self.checks.build_specs(seeded(test, key), "hidden")
            return specs, Wire(specs)
        if test["id"] not in self._specs:
            specs = self.checks.build_specs(test, "hidden")
            self._specs[test["id"]] = (specs, Wire(specs))
        return self._specs[test["id"]]

    @property
    def max_points(self) -> float:
        return float(sum(t["points"] for t in self.tests))

    @property
    def replace(self) -> dict[str, str]:
        """Given cells replaced by parent-side injection (the mlp data cell)."""
        if any(t["check"] == "mlp_accuracy" for t in self.tests) and any(c.id == DATA_CELL for c in self.cells):
            return {DATA_CELL: "data"}
        return {}


def load_checks(kinds=None) -> Checks:
    """The trusted entry points, and the bundle of ``kinds`` (default: every kind) that the
    child loads as ``backprop_checks``: the same text ``backprop generate`` ships."""
    try:
        hidden = importlib.import_module("grader.checks.hidden")
        public = importlib.import_module("grader.checks.public")
        bundle = importlib.import_module("grader.checks.bundle")
    except ModuleNotFoundError as e:
        raise ContextError(f"the checks ({e.name}) are not installed: grader/checks/ has not landed") from None
    source = bundle.bundle(None if kinds is None else list(kinds))
    digest = hashlib.sha256(source.encode())
    for f in sorted(CHECKS_DIR.glob("*.py")):  # hidden and the registry judge in the parent
        digest.update(f.read_bytes())
    return Checks(source, hidden.build_specs, hidden.judge, getattr(public, "Result", None), digest.hexdigest())


def load_context(name: str, course: Path | None = None, checks: Checks | None = None,
                 assignments: Path | None = None) -> Context:
    """Source cells (template via ``grader.authoring``, else the course's source notebook)
    and suite tests (``assignments/<a>/suite.toml``) for assignment ``name``."""
    from grader.authoring import assignment as authoring
    from grader.authoring.template import TemplateError, load_suite

    root = Path(assignments) if assignments else authoring.ASSIGNMENTS
    suite = root / name / "suite.toml"
    if not suite.is_file():
        raise ContextError(f"no assignment {name!r}: {suite} not found")
    try:
        tests = [dict(t.table) for t in load_suite(suite, name)]
    except TemplateError as e:
        raise ContextError(str(e)) from None
    checks = checks or load_checks(dict.fromkeys(t["check"] for t in tests))
    cells, origin = None, ""
    try:
        a = authoring.load_assignment(name, root)
        cells = [SourceCell(c.id, c.role, c.source, c.grade_id) for c in a.cells]
        origin = f"template {root / name / (name + '.py')}"
    except TemplateError as e:
        notebook = (Path(course) / "source" / name / f"{name}.ipynb") if course else None
        if notebook is None or not notebook.is_file():
            raise ContextError(f"cannot read the roles of {name}'s cells: {e}") from None
        cells, origin = source_notebook_cells(notebook), f"source notebook {notebook}"
    ids = {c.grade_id for c in cells if c.role == "test"}
    missing = [t["id"] for t in tests if "test_" + t["id"] not in ids]
    if missing:
        raise ContextError(f"suite tests without a test cell in {origin}: {', '.join(missing)}")
    ctx = Context(name, cells, tests, checks, Path(course) if course else None, origin)
    # what decides a grade: the cells, the suite, the checks, and how grading runs them
    here = Path(__file__).resolve().parent
    engine = [hashlib.sha256((here / f).read_bytes()).hexdigest() for f in ("execute.py", "notebook.py")]
    ctx.fingerprint = hashlib.sha256(json.dumps(
        [[c.id, c.role, c.source] for c in cells] + [tests, checks.fingerprint, engine],
        sort_keys=True, default=str).encode()).hexdigest()
    return ctx


def source_notebook_cells(path: Path) -> list[SourceCell]:
    """Roles from a generated nbgrader source notebook (ours, so its metadata is trusted)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for i, c in enumerate(nb.get("cells", [])):
        meta = c.get("metadata", {}).get("nbgrader", {})
        src = "".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source", "")
        if c.get("cell_type") != "code":
            role = "markdown"
        elif meta.get("grade"):
            role = "test"
        elif meta.get("solution"):
            role = "solution"
        elif meta.get("locked"):
            role = "given"
        elif (c.get("metadata", {}).get("backprop") or {}).get("experiment"):
            role = "experiment"
        else:
            role = "code"
        out.append(SourceCell(c.get("id") or f"cell-{i}", role, src, meta.get("grade_id")))
    return out
