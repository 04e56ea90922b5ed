"""``backprop export``: a group of exports; ``backprop export grades --format canvas|moodle|csv A``,
``backprop export gradescope A --out autograder.zip``."""
from __future__ import annotations

import sys
from pathlib import Path

from . import gradescope


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="grades in the formats other systems import; a Gradescope autograder",
                              description="Export grading results for other systems, or an autograder bundle.")
    sub = p.add_subparsers(dest="export_command", metavar="WHAT")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    g = sub.add_parser("grades", help="the LMS's grade-import CSV (Canvas, Moodle) or a plain CSV",
                       description="Write the grade-import CSV of an LMS from the grading records, "
                                   "manual adjustments (nbgrader gradebook.db) and late penalties included.")
    g.add_argument("assignment", metavar="ASSIGNMENT")
    g.add_argument("--format", "-f", required=True, choices=["canvas", "moodle", "csv"])
    g.add_argument("--course", type=Path, default=Path("course"), help="nbgrader course directory (default: course/)")
    g.add_argument("--grades", type=Path, default=None,
                   help="grading output folder (default: <course>/grades/<ASSIGNMENT>/)")
    g.add_argument("--out", type=Path, default=None,
                   help="file to write, '-' for stdout (default: <grades>/export/grades_<format>.csv)")
    g.add_argument("--column", default=None,
                   help="Canvas: the assignment column, e.g. 'Tensor EDF (12345)' with Canvas's assignment id "
                        "(default: ASSIGNMENT, which Canvas imports as a new assignment)")
    g.add_argument("--no-manual", action="store_true", help="ignore manual scores in gradebook.db")
    g.set_defaults(func=run_grades)
    gradescope.register(sub)


def run_grades(args) -> int:
    from grader.files import write_atomic

    from .grades import ExportError, export_grades

    grades_dir = args.grades or args.course / "grades" / args.assignment
    try:
        ex = export_grades(args.assignment, args.format, grades_dir, args.course, column=args.column,
                           use_manual=not args.no_manual)
    except (ExportError, OSError, ValueError) as e:
        print(f"backprop export grades: error: {e}", file=sys.stderr)
        return 2
    for w in ex.warnings:
        print(f"backprop export grades: warning: {w}", file=sys.stderr)
    if str(args.out) == "-":
        sys.stdout.write(ex.text)
        return 0
    out = args.out or grades_dir / "export" / f"grades_{args.format}.csv"
    write_atomic(out, ex.text, mode=0o644)
    manual = sum(1 for r in ex.rows if r.manual)
    print(f"{out}: {len(ex.rows)} student(s), {args.format} format"
          + (f", manual scores for {manual}" if manual else ""))
    return 0
