"""``backprop report``: feedback pages and the class report from a grading output folder.

Reads only what ``backprop grade`` wrote (``<course>/grades/<A>/`` or ``--out``); never
re-runs anything, so it is cheap to re-run after editing the report code or a record.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .class_report import summarise, write_class_report
from .feedback import feedback_path, write_feedback_html
from .records import load_records
from .terminal import progress, style, table


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="per-student feedback HTML and the class report from grading output",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--assignment", "-a", required=True)
    p.add_argument("--course", type=Path, default=Path("course"), help="nbgrader course directory (default: course/)")
    p.add_argument("--out", type=Path, default=None,
                   help="grading output folder, read and written (default: <course>/grades/<A>/)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=run)


def write_reports(grades_dir, quiet: bool = True) -> dict:
    """Feedback pages for every record plus the class report; returns the paths written.

    The one call ``backprop grade`` needs at its end (``write_class_report`` alone skips
    the feedback pages).
    """
    grades_dir = Path(grades_dir)
    skipped: list[str] = []
    records = load_records(grades_dir, skipped)
    for r in progress(records, len(records), "feedback", quiet=quiet, note=lambda r: str(r.get("student"))[:20]):
        write_feedback_html(r, feedback_path(grades_dir, r.get("student", "?")))
    index = write_class_report(grades_dir, records=records)
    return {"records": records, "skipped": skipped, "report": index, "feedback": grades_dir / "feedback"}


def run(args) -> int:
    grades = args.out or args.course / "grades" / args.assignment
    if not grades.is_dir():
        print(f"backprop report: no grading output at {grades} (run `backprop grade` first, or pass --out)",
              file=sys.stderr)
        return 2
    out = write_reports(grades, quiet=args.quiet or args.json)
    for s in out["skipped"]:
        print(f"backprop report: skipped unreadable record {s}", file=sys.stderr)
    if not out["records"]:
        print(f"backprop report: no submission records in {grades}", file=sys.stderr)
        return 1
    summary = summarise(out["records"])
    if args.json:
        slim = {k: v for k, v in summary.items() if k != "students"}
        slim["paths"] = {"report": str(out["report"]), "feedback": str(out["feedback"]),
                         "pass_matrix": str(out["report"].parent / "pass_matrix.csv")}
        json.dump(slim, sys.stdout, indent=1)
        print()
        return 0
    if args.quiet:
        return 0
    print(style(f"{summary['assignment']}: {summary['submissions']} submissions, mean "
                f"{summary['mean_percent']:.0f}%, median {summary['median_percent']:.0f}%, "
                f"{summary['full_marks']} with full marks", "bold"))
    print()
    print(table([[t["id"], f"{100 * t['pass_rate']:.0f}%", t["partial"], t["failed"], t["top_diagnosis"] or ""]
                 for t in summary["tests"]], ["test", "passed", "partial", "failed", "most common diagnosis"]))
    if summary["misconceptions"]:
        print()
        print(table([[m["diagnosis"], m["component"], m["count"]] for m in summary["misconceptions"][:8]],
                    ["misconception", "component", "students"]))
    if summary["attention"]:
        print()
        print(style(f"{len(summary['attention'])} submission(s) need a TA's look:", "yellow"))
        print(table([[a["student"], a["status"], ", ".join(a["attention"])] for a in summary["attention"]],
                    ["student", "status", "why"]))
    print()
    print(f"class report: {out['report']}")
    print(f"feedback:     {out['feedback']}/<student>.html")
    return 0
