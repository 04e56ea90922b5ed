"""Screenshots of a feedback page and the class report for the docs (``docs/img/``).

    python -m tests.reports.make_screenshots                      # from the fixture records
    python -m tests.reports.make_screenshots --grades course/grades/tensor_edf [--student NAME]

Without ``--student`` the first student with a loop-invariant graph in a failure is shown.
The pages are (re)written from the grading output first; nothing is graded.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from grader.reports.cli import write_reports
from grader.reports.feedback import feedback_path

from .chromium import find_chromium, launch_problem, screenshot
from .fixtures import make_grades

ROOT = Path(__file__).resolve().parents[2]


def pick_student(records) -> str:
    for r in records:
        for t in r.get("tests") or []:
            res = t.get("result") or {}
            if not res.get("passed") and ((res.get("details") or {}).get("graph") or {}).get("broken"):
                return r["student"]
    return records[0]["student"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grades", type=Path, help="grading output folder (default: a fresh fixture)")
    ap.add_argument("--student")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args(argv)
    binary = find_chromium()
    problem = launch_problem(binary)
    if problem:
        raise SystemExit(problem)
    with tempfile.TemporaryDirectory() as tmp:
        grades = args.grades or make_grades(Path(tmp) / "tensor_edf")
        out = write_reports(grades)
        student = args.student or pick_student(out["records"])
        page = feedback_path(grades, student)
        print(screenshot(binary, page.resolve().as_uri(), args.out / "feedback.png", 1100, 1900))
        print(screenshot(binary, out["report"].resolve().as_uri(), args.out / "class_report.png", 1200, 1700))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
