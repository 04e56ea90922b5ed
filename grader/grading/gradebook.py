"""Step 8, gradebook: ``gradebook.csv``, ``results.json`` and the course's nbgrader database.

All three are rebuilt from the per-submission records at the end of every batch, so they
are identical whether a batch ran in one go or was killed and resumed.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from .store import write_json_atomic, write_text_atomic


def fmt_points(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def write_csv(path: Path, records: list[dict], tests: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student"] + [t["id"] for t in tests] + ["total", "max", "review"])
    for rec in records:
        by_id = {t["id"]: t["points"] for t in rec["tests"]}
        w.writerow([rec["student"]] + [fmt_points(by_id.get(t["id"], 0.0)) for t in tests]
                   + [fmt_points(rec["total"]), fmt_points(rec["max"]), _review_cell(rec)])
    write_text_atomic(path, buf.getvalue())


def _review_cell(rec: dict) -> str:
    """Why the record needs a TA's review ("" when it does not); never a spreadsheet formula."""
    from .batch import review_reasons

    text = "; ".join(review_reasons(rec))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_results(path: Path, records: list[dict]) -> None:
    write_json_atomic(path, sorted(records, key=lambda r: r["student"]))


def write_nbgrader(db_url: str, assignment: str, records: list[dict], notebook: str | None = None) -> str:
    """Student, submission and auto score per grade cell into nbgrader's gradebook.

    Returns a one-line note for the summary. The assignment and its grade cells must
    already be in the database (``backprop generate`` runs nbgrader's generate_assignment).
    """
    from nbgrader.api import Gradebook, MissingEntry

    from grader.authoring.course import scripts_on_path

    import warnings

    notebook = notebook or assignment
    written = 0
    with scripts_on_path(), warnings.catch_warnings(), Gradebook(db_url) as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy chatter inside nbgrader's add_submission
        if db_url.startswith("sqlite:"):
            # nbgrader commits after every submission; an fsync each time is wasted here: the
            # whole gradebook is rewritten from the records after every batch anyway
            gb.db.connection().exec_driver_sql("PRAGMA synchronous=OFF")
        try:
            gb.find_notebook(notebook, assignment)
        except MissingEntry:
            return (f"nbgrader gradebook {db_url}: no notebook {notebook!r} of assignment {assignment!r}; "
                    "run `backprop generate` first. Grades NOT written to nbgrader.")
        for rec in records:
            student = rec["student"]
            gb.update_or_create_student(student)
            try:
                gb.find_submission(assignment, student)
            except MissingEntry:
                gb.add_submission(assignment, student)
            points = {t["grade_id"]: float(t["points"]) for t in rec["tests"]}
            # one query for the notebook's grades instead of one find_grade per cell
            for grade in gb.find_submission_notebook(notebook, assignment, student).grades:
                if grade.name in points:
                    grade.auto_score = points[grade.name]
            written += 1
        gb.db.commit()
    return f"nbgrader gradebook {db_url}: auto scores written for {written} student(s)"
