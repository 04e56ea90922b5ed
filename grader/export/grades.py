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

Points: the grade every other output shows, from the same finalised records
(``grader.reports.records.finalise``): each test's points, the TA's manual score where
gradebook.db has one, plus extra credit, minus the late penalty (``total``). With a course
database the outputs are first rebuilt from it (as ``backprop report``), so a grade adjusted in
formgrader since the last run is in the export and in gradebook.csv alike.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.reports.records import finalise, fmt_points

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
    manual: list[str]             # test ids a TA scored by hand or gave extra credit
    submitted_at: str | None
    flags: list[str] = field(default_factory=list)
    percent: float = 0.0          # of ``max``, one decimal, as every output


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


def rows(records: list[dict]) -> list[Row]:
    """One row per finalised record: ``total`` is what the LMS records."""
    out = []
    for rec in sorted((finalise(r) for r in records), key=lambda r: str(r.get("student"))):
        out.append(Row(rec["student"], rec.get("name"), rec.get("email"), rec.get("lms"), rec["total"], rec["max"],
                       True if float(rec.get("seconds_late") or 0) > 0 else rec.get("late"), rec["late_penalty"],
                       [str(t["id"]) for t in rec["tests"] if "manual_points" in t or t.get("extra_credit")],
                       rec.get("submitted_at"), list(rec["attention"]), rec["percent"]))
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
    return _csv(PLAIN_HEADER, [[_text(r.student), _text(r.name), fmt_points(r.points), fmt_points(r.max), f"{r.percent:.1f}",
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
    """The LMS import file's text for the records in ``grades_dir`` (see the module docstring).

    With ``course``'s gradebook.db (and ``use_manual``), every output of ``grades_dir`` is
    rebuilt from it first; ``use_manual=False`` exports the automatic scores (manual grades
    and extra credit left out, the late penalty as last computed)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    grades_dir = Path(grades_dir)
    warnings = []
    db = Path(course) / "gradebook.db" if course else None
    if use_manual and db is not None and db.is_file() and (grades_dir / "submissions").is_dir():
        from grader.reports.cli import rebuild

        rebuild(grades_dir, assignment, Path(course))
    records = load_records(grades_dir)
    if not use_manual:
        records = [{**r, "manual": {}} for r in records]
    rs = rows(records)
    if fmt in ("canvas", "moodle"):
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
