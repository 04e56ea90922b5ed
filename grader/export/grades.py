"""Grades for the LMS: one row per student from the grading records, in the CSV an LMS imports.

- ``canvas``: Canvas's gradebook import (Gradebook > Import): ``Student, ID, SIS User ID,
  SIS Login ID, Section, <assignment>`` and a ``Points Possible`` row; Canvas matches rows on
  ``ID`` (the Canvas user id, taken from the Canvas export the submissions came from). The
  assignment column is ``<name> (<Canvas assignment id>)`` to fill an existing assignment,
  or a bare name for Canvas to create one.
- ``moodle``: Moodle's grading worksheet (Assignment > "Upload grading worksheet", the
  offline-grading feedback plugin): ``Identifier`` is ``Participant <participant id>``
  (from the Moodle export), then ``Full name``, ``Email address``, ``Status``, ``Grade``,
  ``Maximum Grade``, ``Grade can be changed``, ``Last modified (submission)``, ``Last
  modified (grade)``, ``Feedback comments``; Moodle's importer finds columns by these names.
- ``csv``: a plain table (id, name, points, max, percent, late, late penalty, manual, flags).

Points: each test's points from the record, replaced by the TA's manual score where
nbgrader's gradebook.db has one (``Grade.manual_score`` overrides ``auto_score``), plus
any extra credit, minus the record's ``late_penalty`` (points; 0 when absent).
"""
from __future__ import annotations

import csv
import datetime
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.grading.gradebook import fmt_points

FORMATS = ("canvas", "moodle", "csv")
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_HEADER = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                 "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
PLAIN_HEADER = ["id", "name", "points", "max", "percent", "late", "late_penalty", "manual", "submitted_at", "flags"]


class ExportError(Exception):
    """Nothing to export (no grading output), or an export that would be wrong."""


@dataclass
class Row:
    student: str
    name: str | None
    email: str | None
    lms: str | None
    points: float                 # what the LMS should record
    max: float
    late: bool | None
    late_penalty: float
    manual: list[str]             # test ids a TA scored by hand
    submitted_at: str | None
    flags: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return round(100.0 * self.points / self.max, 2) if self.max else 0.0


def load_records(grades_dir: Path) -> list[dict]:
    """The batch's records: ``results.json`` (exactly the last batch's students), else
    ``submissions/*.json``."""
    grades_dir = Path(grades_dir)
    results = grades_dir / "results.json"
    if results.is_file():
        data = json.loads(results.read_text(encoding="utf-8"))
        return [r for r in data if isinstance(r, dict)]
    from grader.reports.records import load_records as from_submissions

    records = from_submissions(grades_dir)
    if not records:
        raise ExportError(f"no grading records in {grades_dir} (run `backprop grade` first)")
    return records


def manual_scores(db: Path, assignment: str, students: list[str], notebook: str | None = None) -> dict:
    """``{student: {grade_id: points}}`` for every grade a TA set by hand in nbgrader (formgrader),
    extra credit included."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    out: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(db).resolve()}") as gb:
        warnings.simplefilter("ignore")
        for student in students:
            try:
                nb = gb.find_submission_notebook(notebook or assignment, assignment, student)
            except MissingEntry:
                continue
            for g in nb.grades:
                extra = float(g.extra_credit or 0.0)
                if g.manual_score is not None or extra:
                    base = g.manual_score if g.manual_score is not None else g.auto_score
                    out.setdefault(student, {})[g.name] = float(base or 0.0) + extra
    return out


def rows(records: list[dict], manual: dict | None = None) -> list[Row]:
    out = []
    for rec in sorted(records, key=lambda r: str(r.get("student"))):
        by_hand = (manual or {}).get(rec["student"], {})
        points, hand = 0.0, []
        for t in rec.get("tests") or []:
            if t.get("grade_id") in by_hand:
                points += by_hand[t["grade_id"]]
                hand.append(t["id"])
            else:
                points += float(t.get("points") or 0.0)
        penalty = float(rec.get("late_penalty") or 0.0)
        points = max(0.0, round(points - penalty, 4))
        out.append(Row(rec["student"], rec.get("name"), rec.get("email"), rec.get("lms"), points,
                       float(rec.get("max") or 0.0), rec.get("late"), penalty, hand, rec.get("submitted_at"),
                       list(rec.get("flags") or [])))
    return out


def _csv(header: list[str], body: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([["" if v is None else str(v) for v in r] for r in body])
    return buf.getvalue()


def _text(v) -> str:
    """A name or id as a spreadsheet shows it, never as a formula (=, +, -, @ lead one)."""
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def canvas_csv(rs: list[Row], column: str) -> str:
    points = max((r.max for r in rs), default=0.0)
    body = [["Points Possible", "", "", "", "", fmt_points(points)]]
    body += [[_text(r.name), _text(r.student), "", "", "", fmt_points(r.points)] for r in rs]
    return _csv(CANVAS_HEADER + [column], body)


def moodle_time(dt: datetime.datetime | None) -> str:
    """Moodle's ``strftimedatetime`` ("Monday, 1 January 2024, 10:00 AM"), as its worksheet writes."""
    if dt is None:
        return "-"
    return f"{dt:%A}, {dt.day} {dt:%B %Y}, {dt.hour % 12 or 12}:{dt:%M %p}"


def moodle_csv(rs: list[Row], now: datetime.datetime) -> str:
    body = []
    for r in rs:
        sub = datetime.datetime.fromisoformat(r.submitted_at) if r.submitted_at else None
        body.append([f"Participant {r.student}", _text(r.name), _text(r.email), "Submitted for grading",
                     fmt_points(r.points), fmt_points(r.max), "Yes", moodle_time(sub), moodle_time(now), ""])
    return _csv(MOODLE_HEADER, body)


def plain_csv(rs: list[Row]) -> str:
    return _csv(PLAIN_HEADER, [[_text(r.student), _text(r.name), fmt_points(r.points), fmt_points(r.max), f"{r.percent:g}",
                                "" if r.late is None else ("yes" if r.late else "no"), fmt_points(r.late_penalty),
                                " ".join(r.manual), r.submitted_at or "", _text("; ".join(r.flags))] for r in rs])


@dataclass
class Export:
    text: str
    rows: list[Row]
    warnings: list[str]


def export_grades(assignment: str, fmt: str, grades_dir: Path, course: Path | None = None,
                  column: str | None = None, use_manual: bool = True,
                  now: datetime.datetime | None = None) -> Export:
    """The LMS import file's text for the records in ``grades_dir`` (see the module docstring)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    records = load_records(grades_dir)
    warnings = []
    db = Path(course) / "gradebook.db" if course else None
    manual = {}
    if use_manual and db is not None and db.is_file():
        manual = manual_scores(db, assignment, [r["student"] for r in records])
    rs = rows(records, manual)
    if fmt in ("canvas", "moodle"):
        unmatched = [r for r in rs if r.student.startswith("unmatched file: ")]
        if unmatched:
            warnings.append(f"{len(unmatched)} notebook(s) named outside the LMS's naming left out: "
                            + ", ".join(r.student for r in unmatched))
        rs = [r for r in rs if r not in unmatched]
        other = sorted({r.lms or "a folder" for r in rs if r.lms != fmt})
        if other:
            warnings.append(f"{sum(r.lms != fmt for r in rs)} record(s) came from {', '.join(other)}, not a "
                            f"{fmt.capitalize()} export: their ids may not be {fmt.capitalize()} ids")
    if fmt == "canvas":
        text = canvas_csv(rs, column or assignment)
    elif fmt == "moodle":
        text = moodle_csv(rs, now or datetime.datetime.now())
    else:
        text = plain_csv(rs)
    return Export(text, rs, warnings)
