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
PROJECT_DIR = Path(__file__).resolve().parents[2]  # <root>/source/backprop-course in the bundle
NO_SECRET = ("WARNING: this autograder bundle has no course secret: every student faces the suite's own "
             "hidden cases. Export it again with `backprop export gradescope A --course DIR` from a course "
             "made by `backprop generate`.")


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


def submitter_id(root: Path) -> str:
    """Who submitted, as the hidden seeds know them: Gradescope's user id of each submitter
    (a group: all of them), else their sid or email; ``student`` when the metadata says nothing.
    Made of file-name-safe characters, since it names the grading folder."""
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        users = [u for u in meta.get("users") or [] if isinstance(u, dict)]
    except (OSError, ValueError, AttributeError):
        users = []
    ids = sorted({str(u.get("id") or u.get("sid") or u.get("email") or "") for u in users} - {""})
    safe = "+".join("".join(c if c.isascii() and (c.isalnum() or c in "._@-") else "_" for c in i) for i in ids)
    return safe[:120] or "student"


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


def results_from_record(record: dict, notes: list[str], seconds: float, isolation: str,
                        seed_warning: str | None = None) -> dict:
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
    seed = record.get("hidden_seed") or {}
    staff = [f"graded in {seconds:.1f} s, isolation: {isolation}",
             f"student: {record.get('student')}, notebook sha256: {record.get('sha256')}",
             f"hidden seed key: {seed.get('key')} ({seed.get('from', 'suite')}); reproduce the verdict with "
             f"`backprop grade NOTEBOOK -a {record['assignment']} --hidden-seed {seed.get('key')}`"
             if seed.get("key") is not None else "hidden seeds: the suite's own"]
    if seed_warning:
        staff.append(seed_warning)
    tests.append({"name": "grading", "score": 0, "max_score": 0, "status": "passed", "output": "\n".join(staff),
                  "visibility": "hidden"})
    return {"score": record["total"], "execution_time": max(1, round(seconds)), "output": "\n".join(out),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def failure(message: str, seconds: float = 0.0) -> dict:
    return {"score": 0, "execution_time": max(1, round(seconds)), "output": message,
            "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def grade(root: Path, assignment: str, workers: int = 1, isolation: str | None = None) -> dict:
    from grader.grading.batch import Request, grade as grade_batch
    from grader.grading.seeds import load_secret

    t0 = time.monotonic()
    secret = load_secret(PROJECT_DIR)  # in the bundle, root-only: never where student code can read
    notebook, notes = find_notebook(root / "submission", assignment)
    if notebook is None:
        return failure(f"{assignment}: 0 points. " + " ".join(notes))
    with tempfile.TemporaryDirectory(prefix="backprop-gradescope-") as tmp:
        student = submitter_id(root)  # the hidden seeds: per submitter and per notebook version
        folder = Path(tmp) / "submitted" / student / assignment
        folder.mkdir(parents=True)
        shutil.copyfile(notebook, folder / f"{assignment}.ipynb")
        summary = grade_batch(Request(path=Path(tmp) / "submitted", assignment=assignment, course=Path(tmp),
                                      out=Path(tmp) / "grades", workers=workers, nbgrader=False, reports=False,
                                      isolation=isolation, secret=secret))
        if summary["grader_errors"]:
            raise RuntimeError("; ".join(summary["grader_errors"]))
        record = json.loads((Path(tmp) / "grades" / "results.json").read_text(encoding="utf-8"))[0]
    warning = None if secret else NO_SECRET
    return results_from_record(record, notes, time.monotonic() - t0, summary["isolation"], warning)


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
