"""``backprop report``: every output of a grading folder rebuilt without regrading.

Reads what ``backprop grade`` wrote (``<course>/grades/<A>/`` or ``--out``) and the TA's
manual grades in the course's gradebook.db, and writes gradebook.csv, results.json,
summary.json, the feedback pages and the class report again from them; never re-runs a
notebook, so it is cheap to re-run after a TA adjusts grades in formgrader.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from grader.files import WriteError

from .class_report import late_line, summarise, write_class_report
from .feedback import feedback_path, write_feedback_html
from .records import finalise, fmt_percent, fmt_points, load_records, load_unmatched, test_order
from .terminal import progress, style, table


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="rebuild every output (gradebook, feedback, class report) from "
                                             "grading output and the TA's manual grades",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--assignment", "-a", required=True)
    p.add_argument("--course", type=Path, default=None,
                   help="nbgrader course directory; its gradebook.db supplies manual grades (default: course/)")
    p.add_argument("--out", type=Path, default=None,
                   help="grading output folder, read and written (default: <course>/grades/<A>/)")
    p.add_argument("--no-nbgrader", action="store_true", help="do not read or write <course>/gradebook.db")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=run)


def write_reports(grades_dir, quiet: bool = True, records: list[dict] | None = None,
                  unmatched: list[dict] | None = None) -> dict:
    """Feedback pages for every record plus the class report; returns the paths written.

    ``records``: the finalised records ``backprop grade`` just wrote every other output from
    (default: read from ``grades_dir``); ``unmatched``: the export's notebooks of nobody
    (default: summary.json's).
    """
    grades_dir = Path(grades_dir)
    skipped: list[str] = []
    if records is None:
        records = load_records(grades_dir, skipped)
    records = [finalise(r) for r in records]
    for r in progress(records, len(records), "feedback", quiet=quiet, note=lambda r: str(r.get("student"))[:20]):
        write_feedback_html(r, feedback_path(grades_dir, r.get("student", "?")))
    index = write_class_report(grades_dir, records=records, unmatched=unmatched)
    return {"records": records, "skipped": skipped, "report": index, "feedback": grades_dir / "feedback"}


def _rebuild(grades: Path, assignment: str, course: Path | None) -> dict:
    """Every output of ``grades`` again, from its records and the course's gradebook.db:
    what ``backprop grade`` writes at its end, without grading anything."""
    from grader.grading.gradebook import write_outputs

    records = load_records(grades)
    if not (grades / "submissions").is_dir():  # only results.json: nothing to rebuild the gradebook from
        return {}
    previous = {}
    try:
        previous = json.loads((grades / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    run = {k: previous[k] for k in ("isolation", "isolation_warning", "graded_now", "reused", "grader_errors",
                                    "seconds", "unmatched") if k in previous}
    if course is not None:  # the late penalty follows the score, manual grades included: computed again
        from grader.grading.late import for_batch
        from grader.grading.store import Store

        note = for_batch(course, assignment, Store(grades), {str(r.get("student")) for r in records})
        if note and "NOT" in note:
            run.setdefault("messages", []).append(note)
    ids = test_order(records)
    return write_outputs(grades, assignment, ids, course=course, reports=False, run=run,
                         max_points=previous.get("max_points"))


def rebuild(grades: Path, assignment: str, course: Path | None, quiet: bool = True) -> tuple[dict, dict]:
    """Every output of ``grades`` from its records, the course's gradebook.db (manual grades,
    extra credit, late penalties; None: without it), feedback pages and class report included:
    ``backprop report``, and ``backprop export grades`` before it exports. Returns
    (write_outputs' summary, write_reports' paths)."""
    rebuilt = _rebuild(grades, assignment, course)
    return rebuilt, write_reports(grades, quiet=quiet)


def run(args) -> int:
    course = args.course or Path("course")
    grades = args.out or course / "grades" / args.assignment
    if not grades.is_dir():
        print(f"backprop report: no grading output at {grades} (run `backprop grade` first, or pass --out)",
              file=sys.stderr)
        return 2
    # manual grades come from the course's database: the named course, or course/ holding grades/
    use_db = not args.no_nbgrader and (args.course is not None or args.out is None) \
        and (course / "gradebook.db").is_file()
    try:
        rebuilt, out = rebuild(grades, args.assignment, course if use_db else None, quiet=args.quiet or args.json)
    except WriteError as e:
        print(f"backprop report: {e}; nothing else was changed, rerun `backprop report` when it can be written",
              file=sys.stderr)
        return 1
    for s in out["skipped"]:
        print(f"backprop report: skipped unreadable record {s}", file=sys.stderr)
    if not out["records"]:
        print(f"backprop report: no submission records in {grades}", file=sys.stderr)
        return 1
    summary = summarise(out["records"], load_unmatched(grades))
    if args.json:
        slim = {k: v for k, v in summary.items() if k != "students"}
        slim["paths"] = {"report": str(out["report"]), "feedback": str(out["feedback"]),
                         "pass_matrix": str(out["report"].parent / "pass_matrix.csv")}
        json.dump(slim, sys.stdout, indent=1)
        print()
        return 0
    if args.quiet:
        return 0
    mx = fmt_points(summary["max_points"])
    print(style(f"{summary['assignment']}: {summary['submissions']} submissions, mean "
                f"{fmt_points(summary['mean'])} / {mx} ({fmt_percent(summary['mean_percent'])}), median "
                f"{fmt_points(summary['median'])} / {mx} ({fmt_percent(summary['median_percent'])}), "
                f"{summary['full_marks']} with full marks", "bold"))
    if rebuilt.get("outputs", {}).get("nbgrader"):
        print(rebuilt["outputs"]["nbgrader"])
    print()
    print(table([[t["id"], t["passed"], t["partial"], t["failed"], fmt_points(t["mean_points"]),
                  fmt_points(t["max_points"]), t["top_diagnosis"] or ""] for t in summary["tests"]],
                ["test", "passed", "partial", "failed", "mean", "max", "most common diagnosis"], align="lrrrrrl"))
    print("(passed: full marks; partial: some points; failed: no points)")
    if late_line(summary):
        print(late_line(summary))
    if summary["misconceptions"]:
        print()
        print(table([[m["diagnosis"], m["component"], m["count"]] for m in summary["misconceptions"][:8]],
                    ["misconception", "component", "students"]))
    if summary["attention"] or summary["unmatched"]:
        print()
        print(style(f"needs a TA's look ({len(summary['attention']) + len(summary['unmatched'])}):", "yellow"))
        print(table([[a["student"], a["name"] or "", a["status"], "; ".join(a["reasons"])[:110]]
                     for a in summary["attention"]]
                    + [[f"file {u['file']}"[:60], "", "not graded", u["reason"][:110]] for u in summary["unmatched"]],
                    ["student", "name", "status", "why"]))
    print()
    print(f"class report: {out['report']}")
    print(f"feedback:     {out['feedback']}/<student>.html")
    if rebuilt:
        print(f"gradebook:    {grades / 'gradebook.csv'}")
    return 0
