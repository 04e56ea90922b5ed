"""Step 8, outputs: ``gradebook.csv``, ``results.json``, ``summary.json``, the course's nbgrader
database, the Markdown feedback and (through ``grader.reports``) the HTML feedback and class
report: all rebuilt from the per-submission records at the end of every batch (and by
``backprop report``), so they are identical whether a batch ran in one go or was killed and
resumed, and they agree with each other on every number.

One source of truth: the records, with the TA's manual grades read from gradebook.db
(``sync_nbgrader``), passed through ``grader.reports.records.finalise`` (one rounding rule,
one meaning of passed / partial / failed, one list of reasons a TA should look). Every
writer below reads only finalised records.
"""
from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

from grader.reports.records import csv_cell, finalise, fmt_percent, fmt_points, points, safe_name

from .store import Store, write_json_atomic, write_text_atomic

__all__ = ["fmt_points", "write_csv", "write_results", "sync_nbgrader", "remove_from_nbgrader", "write_outputs",
           "summarise", "format_summary", "ISOLATION_WARNING"]

ISOLATION_WARNING = ("WARNING: bubblewrap (bwrap) is not in use: submissions ran with rlimits ONLY. "
                     "Student code could read files the grading user can read (reference, other "
                     "submissions) and open network connections. Install bubblewrap for full isolation.")


# -- the files -----------------------------------------------------------------------------

CSV_SCORE_COLUMNS = ["extra_credit", "raw", "late_penalty", "total", "max", "percent"]


def write_csv(path: Path, records: list[dict], tests: list) -> None:
    """One row per student: id and LMS display name, points per test, then the score as
    ``finalise`` makes it (``raw`` = tests + ``extra_credit``, minus ``late_penalty`` is
    ``total``, the grade; ``percent`` of ``total``), status, how late (``yes``: the LMS marked
    it late without a time), and ``flags``: every
    reason a TA should look (the same list as the class report's and summary.json's)."""
    from .late import duration

    records = [finalise(r) for r in records]
    ids = [t["id"] if isinstance(t, dict) else str(t) for t in tests]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "name"] + ids + CSV_SCORE_COLUMNS + ["status", "late", "flags", "review"])
    for rec in records:
        by_id = {str(t["id"]): t["points"] for t in rec["tests"]}
        seconds = float(rec.get("seconds_late") or 0.0)
        w.writerow([csv_cell(rec["student"]), csv_cell(rec.get("name") or "")]
                   + [fmt_points(by_id[i]) if i in by_id else "" for i in ids]
                   + [fmt_points(rec[k]) for k in ("extra_credit", "raw", "late_penalty", "total", "max")]
                   + [f"{rec['percent']:.1f}", rec["status"],
                      duration(seconds) if seconds > 0 else "yes" if rec.get("late") else "",
                      csv_cell(" | ".join(rec["attention"])), csv_cell("; ".join(_review(rec)))])
    write_text_atomic(path, buf.getvalue())


def _review(rec: dict) -> list[str]:
    """Why the record's points wait for a TA ("needs review: ..." flags of the harness and scan)."""
    from .batch import review_reasons

    return review_reasons(rec)


def write_results(path: Path, records: list[dict]) -> None:
    write_json_atomic(path, sorted((finalise(r) for r in records), key=lambda r: r["student"]))


# -- nbgrader's gradebook --------------------------------------------------------------------

def sync_nbgrader(db_url: str, assignment: str, records: list[dict], notebook: str | None = None) -> str:
    """Auto scores of every record into nbgrader's gradebook, and the TA's manual scores and
    extra credit back into each record's ``manual`` (``{test id: {score, auto_at_adjustment,
    auto_now, stale, extra_credit}}``, a key present only when the TA set it).

    A manual score (formgrader, or ``Grade.manual_score``) overrides the automatic one in every
    output. When a regrade changes the automatic score the TA adjusted, the override is kept
    but marked stale (``needs_manual_grade`` in the database, a flag in every output) until
    the TA saves a grade for that cell again. Returns a one-line note for the summary. The
    assignment and its grade cells must already be in the database (``backprop generate``).
    """
    from nbgrader.api import Gradebook, MissingEntry

    from grader.authoring.course import scripts_on_path

    notebook = notebook or assignment
    written = adjusted = stale = extra = 0
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
            tests = {t["grade_id"]: t for t in rec["tests"]}
            before = rec.get("manual") or {}
            manual = {}
            # one query for the notebook's grades instead of one find_grade per cell
            for grade in gb.find_submission_notebook(notebook, assignment, student).grades:
                t = tests.get(grade.name)
                if t is None:
                    continue
                tid = str(t["id"])
                auto = points(t.get("auto_points", t["points"]))
                if grade.manual_score is not None:
                    prev = before.get(tid) or {}
                    acknowledged = prev.get("stale") and not grade.needs_manual_grade  # the TA saved it again
                    if prev.get("score") is not None and points(prev["score"]) == points(grade.manual_score) \
                            and not acknowledged:
                        baseline = prev.get("auto_at_adjustment")
                    else:  # a new adjustment, made against the automatic score in the database
                        baseline = auto if grade.auto_score is None else grade.auto_score
                    m = {"score": points(grade.manual_score), "auto_at_adjustment": points(baseline),
                         "auto_now": auto}
                    m["stale"] = m["auto_at_adjustment"] != auto
                    manual[tid] = m
                    adjusted += 1
                    stale += m["stale"]
                    grade.needs_manual_grade = m["stale"]
                else:
                    grade.needs_manual_grade = False
                if grade.extra_credit:  # formgrader's extra credit: on top of the cell's score, as nbgrader adds it
                    manual.setdefault(tid, {})["extra_credit"] = points(grade.extra_credit)
                    extra += 1
                grade.auto_score = auto
            rec["manual"] = manual  # empty: none (an absent key would carry an old one over, see Store.save)
            written += 1
        gb.db.commit()
    note = f"nbgrader gradebook {db_url}: auto scores written for {written} student(s)"
    if adjusted:
        note += f"; {adjusted} manual grade(s) read" + (f", {stale} STALE (see flags)" if stale else "")
    if extra:
        note += f"; extra credit on {extra} test(s)"
    return note


def remove_from_nbgrader(db_url: str, assignment: str, students: list[str]) -> int:
    """Remove these students' submissions of ``assignment`` (their records were moved aside)."""
    from nbgrader.api import Gradebook, MissingEntry

    from grader.authoring.course import scripts_on_path

    removed = 0
    with scripts_on_path(), warnings.catch_warnings(), Gradebook(db_url) as gb:
        warnings.simplefilter("ignore")
        for student in students:
            try:
                gb.remove_submission(assignment, student)
                removed += 1
            except MissingEntry:
                continue
    return removed


def _move_autograded(course: Path, assignment: str, students: list[str], dest: Path) -> str:
    """``<course>/autograded/<student>/<A>/`` of students moved aside goes with their records:
    ``nbgrader generate_feedback`` reads every autograded folder and fails on one whose
    submission is no longer in gradebook.db."""
    import shutil

    from .autograded import _safe_dir

    moved = 0
    for student in filter(_safe_dir, students):  # autograded/ holds only these (``autograded.for_batch``)
        folder = course / "autograded" / student / assignment
        if folder.is_dir() and not folder.is_symlink():
            target = dest / "autograded" / student
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(target / assignment))
            moved += 1
    return f" and {moved} autograded/ folder(s) moved beside the records" if moved else ""


def nbgrader_db(course) -> Path:
    """The course's gradebook: ``<course>/gradebook.db`` (nbgrader's default, relative to the course)."""
    return Path(course).resolve() / "gradebook.db"


# -- every output, from one set of records ---------------------------------------------------

def write_outputs(out: Path, assignment: str, tests: list, *, students: set[str] | None = None,
                  keep_others: bool = False, course: Path | None = None, reports: bool = True,
                  run: dict | None = None, max_points: float | None = None) -> dict:
    """Write every output of the grading folder ``out`` from its records; return the summary.

    ``students``: the class just graded; records of anyone else are moved aside (unless
    ``keep_others``) so that gradebook.csv, the report and gradebook.db describe one class.
    ``course``: sync with ``<course>/gradebook.db`` (None: leave nbgrader alone).
    ``run``: the batch's own facts (isolation, counts, errors, seconds) for summary.json.
    """
    out = Path(out)
    store = Store(out)
    run = dict(run or {})
    messages = []
    db = nbgrader_db(course) if course is not None else None
    if students is not None and not keep_others:
        dest, moved = store.move_aside(students)
        if moved:
            msg = (f"moved the records of {len(moved)} student(s) not in this input to {dest} "
                   f"({', '.join(moved[:5])}{' ...' if len(moved) > 5 else ''}); pass --keep-others to keep them")
            if db is not None and db.is_file():
                try:
                    n = remove_from_nbgrader(f"sqlite:///{db}", assignment, moved)
                    msg += f"; removed {n} of their submission(s) from gradebook.db"
                    adjusted = [p.stem for p in dest.glob("*.json") if json.loads(p.read_text()).get("manual")]
                    if adjusted:
                        msg += (f" (manual grades of {', '.join(adjusted[:5])} are kept in the moved records' "
                                "\"manual\")")
                except Exception as e:  # noqa: BLE001 - the files are right; say the database is not
                    msg += f"; gradebook.db NOT updated ({type(e).__name__}: {e})"
            if course is not None:
                msg += _move_autograded(Path(course), assignment, moved, dest)
            messages.append(msg)
    records = sorted(store.all(), key=lambda r: str(r.get("student")))

    nb_note = None
    if db is not None:
        if db.is_file():
            try:
                before = [json.dumps(r.get("manual"), sort_keys=True) for r in records]
                nb_note = sync_nbgrader(f"sqlite:///{db}", assignment, records)
                for rec, b in zip(records, before):  # the manual grades read are part of the record now
                    if json.dumps(rec.get("manual"), sort_keys=True) != b:
                        store.save(rec)
            except Exception as e:  # noqa: BLE001 - the CSV/JSON are still written; say so loudly
                nb_note = f"nbgrader gradebook {db}: NOT written ({type(e).__name__}: {e})"
        else:
            nb_note = f"no nbgrader gradebook at {db} (run `backprop generate`); grades not written there"

    final = [finalise(r) for r in records]
    write_csv(out / "gradebook.csv", final, tests)
    write_results(out / "results.json", final)
    from .feedback import render

    for rec in final:
        write_text_atomic(out / "feedback" / f"{safe_name(rec['student'])}.md", render(rec))
    report_note = None
    if reports:
        try:
            from grader.reports.cli import write_reports

            report_note = str(write_reports(out, quiet=True, records=final,
                                            unmatched=list(run.get("unmatched") or []))["report"])
        except Exception as e:  # noqa: BLE001 - the grades are written; the report is a view of them
            report_note = f"class report NOT written ({type(e).__name__}: {e}); retry with `backprop report`"
    summary = summarise(final, tests, run, assignment=assignment, max_points=max_points)
    summary["messages"] = messages + list(run.get("messages") or [])
    summary["outputs"] = {"gradebook_csv": str(out / "gradebook.csv"), "results_json": str(out / "results.json"),
                          "feedback": str(out / "feedback"), "submissions": str(out / "submissions"),
                          "nbgrader": nb_note, "report": report_note}
    write_json_atomic(out / "summary.json", summary)
    return summary


def summarise(records: list[dict], tests: list, run: dict | None = None, *, assignment: str | None = None,
              max_points: float | None = None) -> dict:
    """summary.json: the class report's numbers (``grader.reports.class_report.summarise``,
    same records, same rounding) plus the batch's own facts."""
    from grader.reports.class_report import summarise as class_summary

    run = dict(run or {})
    s = class_summary(records, run.get("unmatched"))
    ids = [t["id"] if isinstance(t, dict) else str(t) for t in tests]
    by_id = {t["id"]: t for t in s["tests"]}
    maxes = {t["id"]: points(t["points"]) for t in tests if isinstance(t, dict) and "points" in t}
    isolation = run.get("isolation")
    return {
        "assignment": assignment or s["assignment"], "isolation": isolation, "limits": run.get("limits"),
        "isolation_warning": run.get("isolation_warning", None if isolation in (None, "bwrap") else ISOLATION_WARNING),
        "submissions": s["submissions"], "graded_now": run.get("graded_now", 0), "reused": run.get("reused", 0),
        "max_points": points(max_points) if max_points is not None else s["max_points"],
        "mean": s["mean"], "median": s["median"], "mean_percent": s["mean_percent"],
        "median_percent": s["median_percent"], "full_marks": s["full_marks"],
        "tests": [{"id": i, "max_points": maxes.get(i, (by_id.get(i) or {}).get("max_points")),
                   **{k: (by_id.get(i) or {}).get(k, 0) for k in ("passed", "partial", "failed")},
                   "mean_points": (by_id.get(i) or {}).get("mean_points", 0.0),
                   "diagnoses": (by_id.get(i) or {}).get("diagnoses", {})} for i in ids],
        "problems": [{"student": x["student"], "name": x["name"], "status": x["status"], "why": x["reasons"][0][:300]}
                     for x in s["students"] if x["status"] != "graded"],
        # every submission a TA should look at, then the export's notebooks of nobody (never graded)
        "flagged": [{"student": a["student"], "name": a["name"], "status": a["status"], "reasons": a["reasons"]}
                    for a in s["attention"]]
                   + [{"student": None, "name": None, "file": u["file"], "status": "not graded",
                       "reasons": [u["reason"]]} for u in s["unmatched"]],
        "unmatched": s["unmatched"],
        "manual_grades": s["manual_grades"], "extra_credit": s["extra_credit"],
        "late": s["late"], "late_penalised": s["late_penalised"],
        # the TA's review list: what the scan and the harness saw, per student (the student sees none of it)
        "review": {r["student"]: _review(r) for r in records if _review(r)},
        "grader_errors": list(run.get("grader_errors") or []), "seconds": run.get("seconds", 0.0),
    }


def format_summary(s: dict) -> str:
    """The terminal summary of ``backprop grade``: the same numbers as every file."""
    from grader.reports.terminal import table

    lines = []
    if s.get("isolation_warning"):
        lines += ["!" * 78, s["isolation_warning"], "!" * 78]
    lines.append(f"backprop grade {s['assignment']}: {s['submissions']} submission(s), {s['graded_now']} graded now, "
                 f"{s['reused']} unchanged (kept), isolation: {s['isolation']}"
                 + (f" (memory and CPU: {s['limits']})" if s.get("limits") else "") + f", {s['seconds']:.1f} s")
    for m in s.get("messages") or []:
        lines.append(m)
    if s["mean"] is not None:
        lines.append(f"score: mean {fmt_points(s['mean'])} / {fmt_points(s['max_points'])} "
                     f"({fmt_percent(s['mean_percent'])}), median {fmt_points(s['median'])} "
                     f"({fmt_percent(s['median_percent'])}), {s['full_marks']} with full marks")
    lines.append("")
    lines.append(table([[t["id"], t["passed"], t["partial"], t["failed"], fmt_points(t["mean_points"]),
                         fmt_points(t["max_points"]),
                         ", ".join(f"{k} {v}" for k, v in list(t["diagnoses"].items())[:3])] for t in s["tests"]],
                       ["test", "passed", "partial", "failed", "mean", "max", "most common diagnoses"],
                       align="lrrrrrl"))
    lines.append("(passed: full marks; partial: some points; failed: no points)")
    from grader.reports.class_report import late_line

    if late_line(s):
        lines.append(late_line(s))
    review = s.get("review") or {}
    if review:
        lines += ["", f"needs review by a TA ({len(review)}): their points are held or may be forged "
                      "(reasons in the gradebook's review column and the class report)"]
        for student, reasons in list(review.items())[:20]:
            lines.append(f"  {student}  {reasons[0][:100]}" + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""))
        if len(review) > 20:
            lines.append(f"  ... and {len(review) - 20} more")
    if s["flagged"]:
        lines += ["", f"needs a TA's look ({len(s['flagged'])}):"]
        for f in s["flagged"][:40]:
            who = (f"{f['student']} ({f['name']})" if f.get("name") else str(f["student"])) \
                if f.get("student") is not None else f"file {f.get('file')}"
            lines.append(f"  {who}  [{f['status']}]  {f['reasons'][0][:110]}"
                         + (f"  (+{len(f['reasons']) - 1} more)" if len(f["reasons"]) > 1 else ""))
        if len(s["flagged"]) > 40:
            lines.append(f"  ... and {len(s['flagged']) - 40} more (summary.json, gradebook.csv column flags)")
    if s["grader_errors"]:
        lines += ["", f"GRADER ERRORS ({len(s['grader_errors'])}): these submissions were not graded; rerun to retry"]
        lines += ["  " + e.strip().splitlines()[0] + " | " + e.strip().splitlines()[-1] for e in s["grader_errors"]]
    o = s.get("outputs", {})
    if o:
        lines += ["", f"gradebook: {o['gradebook_csv']}", f"results:   {o['results_json']}",
                  f"feedback:  {o['feedback']}/<student>.md" + (" and .html" if o.get("report") else "")]
        if o.get("report"):
            lines.append(f"report:    {o['report']}")
        if o.get("nbgrader"):
            lines.append(o["nbgrader"])
    if s.get("isolation_warning"):
        lines += ["!" * 78, s["isolation_warning"], "!" * 78]
    return "\n".join(lines)

