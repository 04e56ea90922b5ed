"""What per-submission hidden seeds cost: CPU time per submission, shared seeds vs each its own.

    python bench/hidden_seeds.py [--n 12] [--assignment tensor_edf] [--no-batch]

1. The parent's share, in-process: for N submissions (the reference notebook's records), the
   trusted work per submission: build the hidden specs and encode them for the child, examine the
   records for numeric differentiation, judge them against the reference's expectations. With the
   suite's own seeds every submission shares the specs and the memoised expectations; with a
   key per submission each builds its own and the reference runs on them again.
2. A real batch: `backprop grade` (sandbox, children) on N copies of the correct notebook under N
   student ids, once in a course without a secret (shared seeds) and once with one; CPU time of
   the whole process tree (user + sys, the grader and every child), per submission.

Prints CPU seconds (the machine may be loaded: wall time would say little) and the ratios.
Nothing here asserts.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parent_share(assignment: str, n: int) -> dict[str, float]:
    from grader.audit.namespace import build, notebook_cells
    from grader.authoring.assignment import load_assignment
    from grader.checks import hidden
    from grader.checks.base import probe
    from grader.grading import forensics
    from grader.grading.context import load_context

    ns, errors = build(notebook_cells(load_assignment(assignment)))
    assert not errors, errors
    rng = random.Random(7)
    out = {}
    for mode in ("shared", "per-student"):
        ctx = load_context(assignment)
        hidden._MEMO.clear()
        spent = 0.0
        for i in range(n):
            key = None if mode == "shared" else rng.getrandbits(63)
            for test in ctx.tests:
                if test["check"] == "mlp_accuracy":
                    continue  # trains a network in the child: not the parent's share
                t0 = time.process_time()
                specs, _wired = ctx.specs(test, key)
                spent += time.process_time() - t0
                records = [probe(ns, s) for s in specs]  # the child's work: not counted
                t0 = time.process_time()
                forensics.examine(test, specs, records, forensics.reference_expectation)
                ctx.checks.judge(test, specs, records)
                spent += time.process_time() - t0
        out[mode] = spent / n
    return out


def batch(assignment: str, n: int, secret: bool, tmp: Path) -> float:
    """CPU seconds per submission of one `backprop grade` run (its whole process tree)."""
    from grader.grading import sample, seeds

    course = tmp / "course"
    if not course.exists():
        from grader.authoring.course import generate

        generate([assignment], course)
    path = seeds.secret_path(course)
    if secret and not path.exists():
        seeds.ensure_secret(course)
    if not secret and path.exists():
        shutil.rmtree(path.parent)
    nb = sample.as_submitted(sample.source_notebook(course, assignment))
    sub = tmp / "submitted"
    shutil.rmtree(sub, ignore_errors=True)
    for i in range(n):
        sample.write(nb, sub / f"student{i:03d}" / assignment / f"{assignment}.ipynb")
    out = tmp / ("out-secret" if secret else "out-plain")
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
            "u = resource.getrusage(resource.RUSAGE_CHILDREN); print(u.ru_utime + u.ru_stime); sys.exit(r)")
    done = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "grader.cli", "grade", str(sub),
                           "--assignment", assignment, "--course", str(course), "--out", str(out), "--force",
                           "--no-nbgrader", "--no-report", "--quiet"], cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    records = json.loads((out / "results.json").read_text())
    keys = {r["hidden_seed"]["key"] for r in records}
    assert all(r["total"] == r["max"] for r in records), "a correct notebook lost points"
    assert len(keys) == (n if secret else 1)
    return float(done.stdout.strip().splitlines()[-1]) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--assignment", default="tensor_edf")
    ap.add_argument("--no-batch", action="store_true")
    args = ap.parse_args()
    p = parent_share(args.assignment, args.n)
    print(f"{args.assignment}, {args.n} submissions: parent's CPU per submission (specs, examine, judge)")
    print(f"  shared seeds      {p['shared'] * 1000:8.1f} ms")
    print(f"  a key each        {p['per-student'] * 1000:8.1f} ms   ratio {p['per-student'] / p['shared']:.2f}")
    if args.no_batch:
        return
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as tmp:
        plain = batch(args.assignment, args.n, False, Path(tmp))
        mixed = batch(args.assignment, args.n, True, Path(tmp))
    print("`backprop grade`, whole process tree, CPU per submission")
    print(f"  no secret (shared) {plain:8.2f} s")
    print(f"  course secret      {mixed:8.2f} s   ratio {mixed / plain:.2f}")


if __name__ == "__main__":
    main()
