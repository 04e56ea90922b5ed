"""Reading an assignment: the percent-format template and its ``suite.toml``.

A template is a Python script split into cells by ``# %%`` headers (see
docs/ARCHITECTURE.md). Parsing only records what each header says; pulling code
from ``reference/`` and rendering tests are later steps (``pull.py``, ``tests.py``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

COURSE_ID = "backprop-course"  # the default nbgrader course id

ROLES = ("markdown", "given", "solution", "test", "code")
# Bare header words (no ``=``): ``# %% [code] experiment id=...`` marks a cell that only
# times or plots; the student runs it in Jupyter, ``backprop grade`` never runs it.
FLAGS = {"experiment": ("code",)}
CHECK_KINDS = ("component", "backward_loop", "function", "dual", "tape", "mlp_accuracy",
               "mlp_build", "mlp_predict", "mlp_train_step", "mlp_train")
_HEADER = re.compile(r"^# %%(?:\s+\[(?P<role>[^\]]*)\])?(?P<options>.*)$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TemplateError(Exception):
    """An assignment's template or suite is inconsistent; the message says where and why."""


@dataclass
class RawCell:
    """One template cell as written: role, header options, body text, template line."""

    role: str
    options: dict
    body: str
    line: int

    @property
    def sources(self) -> list[str]:
        """The ``from=`` items: ``module:Name,Name`` or ``module#region``."""
        return self.options.get("from", [])


@dataclass
class SuiteTest:
    """One autograded test of ``suite.toml``."""

    id: str
    points: float
    check: str
    target: str | None
    visible: dict
    hidden: dict
    table: dict = field(repr=False)  # the whole TOML table (+ assignment), as handed to run_hidden

    @property
    def grade_id(self) -> str:
        return "test_" + self.id


def parse_template(path: Path) -> list[RawCell]:
    """Split a percent-format template into raw cells (text before the first header is ignored)."""
    cells: list[RawCell] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            role = (m["role"] or "code").strip()
            if role not in ROLES:
                raise TemplateError(f"{path}:{lineno}: unknown cell role [{role}]; expected one of {ROLES}")
            options = _parse_options(m["options"], path, lineno)
            for flag, roles in FLAGS.items():
                if options.get(flag) and role not in roles:
                    raise TemplateError(f"{path}:{lineno}: '{flag}' is only allowed on [{'], ['.join(roles)}] cells")
            if options.get("experiment") and "id" not in options:
                # grading matches submitted cells to this one by id: it must not shift
                raise TemplateError(f"{path}:{lineno}: an experiment cell needs a stable id=...")
            cells.append(RawCell(role, options, "", lineno))
        elif cells:
            cells[-1].body += line + "\n"
    if not cells:
        raise TemplateError(f"{path}: no '# %%' cells found")
    for cell in cells:
        cell.body = cell.body.strip("\n")
        if cell.role == "markdown":
            cell.body = _uncomment(cell, path)
        if cell.sources and cell.role not in ("given", "solution"):
            raise TemplateError(f"{path}:{cell.line}: from= is only allowed on [given] and [solution] cells")
    return cells


def _parse_options(text: str, path: Path, lineno: int) -> dict:
    """``key=value`` tokens; tokens without ``=`` continue a ``from=`` list."""
    options: dict = {}
    last = None
    for token in text.split():
        key, eq, value = token.partition("=")
        if eq:
            last = key
            options[key] = value.split(",") if key == "keep" else value
            if key == "from":
                options[key] = [value]
        elif last == "from" and token not in FLAGS:
            options["from"].append(token)
        elif token in FLAGS:
            options[token] = True
            last = None
        else:
            raise TemplateError(f"{path}:{lineno}: cannot read header option {token!r} (expected key=value)")
    if "id" in options and not _ID.match(options["id"]):
        raise TemplateError(f"{path}:{lineno}: cell id {options['id']!r} must match {_ID.pattern}")
    return options


def _uncomment(cell: RawCell, path: Path) -> str:
    out = []
    for offset, line in enumerate(cell.body.splitlines(), start=1):
        if line == "#":
            out.append("")
        elif line.startswith("# "):
            out.append(line[2:])
        elif not line.strip():
            out.append("")
        else:
            raise TemplateError(f"{path}:{cell.line + offset}: markdown lines must start with '# '")
    return "\n".join(out)


def load_suite(path: Path, assignment: str) -> list[SuiteTest]:
    """Read and validate ``suite.toml``: one ``[[test]]`` table per autograded test."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TemplateError(f"{path}: {e}") from e
    if data.get("assignment") != assignment:
        raise TemplateError(f"{path}: assignment = {data.get('assignment')!r}, expected {assignment!r}")
    tests, seen = [], set()
    for i, t in enumerate(data.get("test", []), start=1):
        where = f"{path}: test #{i} ({t.get('id', '?')})"
        for key in ("id", "points", "check"):
            if key not in t:
                raise TemplateError(f"{where}: missing key {key!r}")
        if not _ID.match("test_" + t["id"]):
            raise TemplateError(f"{where}: id must match {_ID.pattern} once prefixed with 'test_'")
        if t["id"] in seen:
            raise TemplateError(f"{where}: duplicate test id")
        seen.add(t["id"])
        if t["check"] not in CHECK_KINDS:
            raise TemplateError(f"{where}: unknown check {t['check']!r}; expected one of {CHECK_KINDS}")
        if not isinstance(t["points"], (int, float)) or isinstance(t["points"], bool) or t["points"] < 0:
            # 0 points: a diagnostic test whose verdict is reported but graded by other tests
            raise TemplateError(f"{where}: points must be a number >= 0")
        tests.append(SuiteTest(id=t["id"], points=t["points"], check=t["check"], target=t.get("target"),
                               visible=dict(t.get("visible", {})), hidden=dict(t.get("hidden", {})),
                               table={"assignment": assignment, **t}))
    if not tests:
        raise TemplateError(f"{path}: no [[test]] tables")
    return tests
