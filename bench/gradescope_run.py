"""The Gradescope autograder's time per notebook: `run_autograder` vs `nbgrader autograde`.

    python bench/gradescope_run.py [--assignment tensor_edf] [--runs 5]

Builds the bundle (`backprop export gradescope`), unzips it under a temporary root as
Gradescope does, and times `run_autograder` on the assignment's source notebook (full
marks), a whole process each run as on Gradescope (interpreter start, imports, fork server,
grading, results.json). Alternating with it, in the same run, `nbgrader autograde` of the
same notebook for one student in a generated course: what a Gradescope autograder built on
nbgrader's grading pays per submission. Prints min/median/max of each and the ratio of
medians. Benchmarks print ratios; nothing here asserts.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(argv: list[str], **kw) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assignment", default="tensor_edf")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    a = args.assignment

    from grader.authoring.course import generate
    from grader.export.gradescope import export
    from grader.grading import sample

    with tempfile.TemporaryDirectory(prefix="bench-gradescope-") as tmp:
        tmp = Path(tmp)
        course = tmp / "course"
        generate([a], course)
        nb = sample.as_submitted(sample.source_notebook(course, a))
        bundle = export(a, tmp / "autograder.zip")

        root = tmp / "autograder"
        with zipfile.ZipFile(bundle) as z:
            z.extractall(root / "source")
        os.chmod(root / "source" / "run_autograder", 0o755)
        sample.write(nb, root / "submission" / f"{a}.ipynb")
        env = dict(os.environ, AUTOGRADER_ROOT=str(root), BACKPROP_PYTHON=sys.executable)
        env.pop("PYTHONPATH", None)

        folder = course / "submitted" / "s000" / a
        sample.write(nb, folder / f"{a}.ipynb")
        shutil.copy(course / "source" / a / "backprop_checks.py", folder / "backprop_checks.py")
        nbgrader = [sys.executable, "-m", "nbgrader", "autograde", a, "--student", "s000", "--force"]

        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(timed(["bash", str(root / "source" / "run_autograder")], env=env))
            theirs.append(timed(nbgrader, cwd=course))
        score = json.loads((root / "results" / "results.json").read_text())["score"]

    def fmt(xs: list[float]) -> str:
        return f"min {min(xs):.2f} s, median {statistics.median(xs):.2f} s, max {max(xs):.2f} s"

    print(f"{a}, {args.runs} runs each, alternating; the notebook scored {score:g} in results.json")
    print(f"run_autograder (bundle, whole process): {fmt(ours)}")
    print(f"nbgrader autograde (one notebook):      {fmt(theirs)}")
    print(f"ratio of medians (nbgrader / ours): {statistics.median(theirs) / statistics.median(ours):.1f}x")


if __name__ == "__main__":
    main()
