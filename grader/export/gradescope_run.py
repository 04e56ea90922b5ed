"""What ``run_autograder`` runs inside a Gradescope container: grade the one notebook in
``<root>/submission`` with ``backprop grade`` and write ``<root>/results/results.json`` in
Gradescope's schema. Every failure, of the submission or of the grader, still ends in a
results.json with a score and a message: an autograder that crashes shows students nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

NEUTRAL_REVIEW = "Note: this submission will also be looked at by your course staff."


def _write(root: Path, results: dict) -> None:
    out = root / "results"
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
    tmp.replace(out / "results.json")


def _student(root: Path) -> str:
    """Gradescope's submitter (sid, else email) from submission_metadata.json; a label only."""
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        user = (meta.get("users") or [{}])[0]
        return str(user.get("sid") or user.get("email") or "student")
    except (OSError, ValueError, AttributeError, IndexError):
        return "student"


def find_notebook(submission: Path, assignment: str) -> tuple[Path | None, list[str]]:
    """The notebook to grade and notes about the choice: ``<A>.ipynb`` anywhere in the
    submission, else the only (or newest) ``.ipynb``; checkpoints are ignored."""
    found = sorted(p for p in submission.rglob("*.ipynb")
                   if p.is_file() and not p.is_symlink() and ".ipynb_checkpoints" not in p.parts)
    if not found:
        return None, [f"no notebook found in your submission (expected {assignment}.ipynb)"]
    exact = [p for p in found if p.name == f"{assignment}.ipynb"]
    if exact:
        chosen = exact[0]
        notes = [f"several notebooks named {assignment}.ipynb; graded {chosen.relative_to(submission)}"] \
            if len(exact) > 1 else []
    else:
        chosen = max(found, key=lambda p: (p.stat().st_mtime, p.name))
        notes = [f"graded {chosen.relative_to(submission)}: please name your notebook {assignment}.ipynb"]
    others = [str(p.relative_to(submission)) for p in found if p != chosen]
    if others and not notes:
        notes.append(f"also submitted, not graded: {', '.join(others)}")
    return chosen, notes


def _tests(record: dict) -> list[dict]:
    tests = []
    for i, t in enumerate(record.get("tests", []), 1):
        r = t.get("result", {})
        # a 0-point diagnostic test passes only on its verdict, never because 0 >= 0
        passed = bool(r.get("passed")) and t["points"] >= t["max_points"]
        name = t["id"] + (f" ({t['target']})" if t.get("target") else "")
        tests.append({"name": name, "number": str(i), "score": t["points"], "max_score": t["max_points"],
                      "status": "passed" if passed else "failed",
                      "output": "passed" if passed else r.get("message", ""),
                      "visibility": "visible"})
    return tests


def results_from_record(record: dict, notes: list[str], seconds: float, isolation: str) -> dict:
    """Gradescope's results.json from one grading record."""
    out = [f"{record['assignment']}: {record['total']:g} / {record['max']:g} points."]
    out += notes + list(record.get("notes", []))
    if record.get("error"):
        out.append(f"Your notebook could not be graded: {record['error']}")
    errors = [c for c in record.get("cells", []) if c.get("status") in ("error", "timeout")]
    for c in errors[:10]:
        out.append(f"cell {c.get('id')}: {c.get('status')}: {str(c.get('error', ''))[:300]}")
    flags = list(record.get("flags", []))
    if flags:
        out.append(NEUTRAL_REVIEW)
    tests = _tests(record)
    if flags:  # for the course staff only: Gradescope hides "hidden" tests from students
        tests.append({"name": "TA review", "score": 0, "max_score": 0, "status": "failed",
                      "output": "needs review: " + "; ".join(flags), "visibility": "hidden"})
    tests.append({"name": "grading", "score": 0, "max_score": 0, "status": "passed",
                  "output": f"graded in {seconds:.1f} s, isolation: {isolation}", "visibility": "hidden"})
    return {"score": record["total"], "execution_time": max(1, round(seconds)), "output": "\n".join(out),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def failure(message: str, seconds: float = 0.0) -> dict:
    return {"score": 0, "execution_time": max(1, round(seconds)), "output": message,
            "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def grade(root: Path, assignment: str, workers: int = 1, isolation: str | None = None) -> dict:
    from grader.grading.batch import Request, grade as grade_batch

    t0 = time.monotonic()
    notebook, notes = find_notebook(root / "submission", assignment)
    if notebook is None:
        return failure(f"{assignment}: 0 points. " + " ".join(notes))
    with tempfile.TemporaryDirectory(prefix="backprop-gradescope-") as tmp:
        student = "submission"
        folder = Path(tmp) / "submitted" / student / assignment
        folder.mkdir(parents=True)
        shutil.copyfile(notebook, folder / f"{assignment}.ipynb")
        summary = grade_batch(Request(path=Path(tmp) / "submitted", assignment=assignment, course=Path(tmp),
                                      out=Path(tmp) / "grades", workers=workers, nbgrader=False, reports=False,
                                      isolation=isolation))
        if summary["grader_errors"]:
            raise RuntimeError("; ".join(summary["grader_errors"]))
        record = json.loads((Path(tmp) / "grades" / "results.json").read_text(encoding="utf-8"))[0]
    return results_from_record(record, notes, time.monotonic() - t0, summary["isolation"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="run_autograder")
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--assignment", required=True)
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    try:
        # BACKPROP_ISOLATION=rlimits-only forces the fallback (tests); by default the best available
        results = grade(args.root, args.assignment, isolation=os.environ.get("BACKPROP_ISOLATION") or None)
    except Exception:  # noqa: BLE001 - a grader bug: still give Gradescope a verdict
        traceback.print_exc()
        results = failure("The autograder hit an internal error and could not grade this submission; "
                          "your course staff have been told (see the autograder's stdout).",
                          time.monotonic() - t0)
    results.setdefault("extra_data", {})["student"] = _student(args.root)
    _write(args.root, results)
    print(json.dumps({"score": results["score"], "tests": len(results["tests"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
