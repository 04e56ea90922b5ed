"""`backprop grade` vs `nbgrader autograde` on the same class of submissions, for every assignment.

    python bench/grade_vs_nbgrader.py [--n 100] [--workers 2] [--assignments a b ...] [--keep DIR]

Builds one course in a temporary folder (`backprop generate`), N submitted notebooks per
assignment, then grades each assignment twice, each as a subprocess, one run each:

- `backprop grade submitted/ --assignment <a>` (bwrap sandbox, fork server, trusted judge
  in the parent), with every output on: feedback HTML/Markdown, the class report with its
  SVGs, the nbgrader gradebook write;
- `nbgrader autograde <a>` (one Jupyter kernel per notebook, the hidden test cells calling
  the same trusted checks in the student's kernel: no isolation at all).

Submissions: for tensor_edf the source notebook with correct and buggy corpus variants swapped
in; for every assignment also the release notebook (every stub left) and the source with one
solution cell at a time taken from the release (partial credit). Prints, per assignment,
per-submission median, total wall time, CPU time (user + sys) of each process tree, peak
memory of each process tree (psutil sampling every 50 ms, sum of RSS), the load average,
the throughput ratio and how often the two agree on which test cells earned full marks;
then one summary table. On a shared machine wall times stretch with the load; the CPU
ratio does much less. Nothing here asserts.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ASSIGNMENTS = ("scalar_backprop", "forward_mode", "tensor_edf", "mlp_training")


def _variants(course: Path, assignment: str) -> list[dict]:
    """Distinct submissions: full marks, corpus variants (tensor_edf), stubs, partial stubs."""
    import copy

    from grader.grading import sample

    source = sample.as_submitted(sample.source_notebook(course, assignment))
    release = sample.load_notebook(course / "release" / assignment / f"{assignment}.ipynb")
    stubs = {c["id"]: c["source"] for c in release["cells"]
             if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    variants = [source]
    if assignment == "tensor_edf":
        for kind in ("correct", "buggy"):
            for path in sample.corpus(kind):
                v = sample.with_variant(source, path)
                if v is not None:
                    variants.append(v)
    variants.append(sample.as_submitted(release))
    for cell_id, stub in stubs.items():
        v = copy.deepcopy(source)
        for cell in v["cells"]:
            if cell.get("id") == cell_id:
                cell["source"] = stub
        variants.append(v)
    return variants


def build_class(course: Path, assignment: str, n: int) -> list[str]:
    from grader.grading import sample

    variants = _variants(course, assignment)
    checks = course / "source" / assignment / "backprop_checks.py"
    students = []
    for i in range(n):
        sid = f"s{i:03d}"
        folder = course / "submitted" / sid / assignment
        sample.write(variants[i % len(variants)], folder / f"{assignment}.ipynb")
        shutil.copy(checks, folder / "backprop_checks.py")  # what the release folder gives students
        students.append(sid)
    return students


class TreeMemory:
    """Peak summed RSS of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            import psutil
        except ImportError:
            return
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root] + root.children(recursive=True)
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except Exception:  # noqa: BLE001 - the process ended
                pass
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str], cwd: Path, marker: str | None = None) -> tuple[float, int, list[float], str, float]:
    """Wall time, peak tree RSS, times at which stderr lines containing ``marker`` appeared,
    stdout, and the CPU time (user + sys) of the whole process tree, which load does not
    stretch as it stretches wall time."""
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    mem = TreeMemory(p.pid)
    stamps, err_lines = [], []

    def read_err():
        for line in p.stderr:
            err_lines.append(line)
            if marker and marker in line:
                stamps.append(time.perf_counter() - t0)

    t = threading.Thread(target=read_err, daemon=True)
    t.start()
    out = p.stdout.read()
    p.wait()
    t.join()
    wall = time.perf_counter() - t0
    peak = mem.stop()
    if p.returncode != 0:
        print(f"warning: {' '.join(cmd[:4])} ... exited {p.returncode}\n{''.join(err_lines[-15:])}", file=sys.stderr)
    return wall, peak, stamps + [wall], out, _children_cpu() - cpu0


def nbgrader_scores(db: Path, assignment: str, keys) -> dict[tuple[str, str], tuple[float, float]]:
    """(student, grade_id) -> (auto_score, max_score) as nbgrader's gradebook has them."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{db}") as gb:
        warnings.simplefilter("ignore")
        for student, grade_id in keys:
            try:
                g = gb.find_grade(grade_id, assignment, assignment, student)
            except MissingEntry:
                continue
            out[(student, grade_id)] = (g.auto_score or 0.0, g.max_score)
    return out


def bench_assignment(course: Path, assignment: str, n: int, workers: int) -> dict:
    students = build_class(course, assignment, n)
    ours_cmd = [sys.executable, "-m", "grader.cli", "grade", str(course / "submitted"), "--assignment", assignment,
                "--course", str(course), "--workers", str(workers), "--force", "--json"]
    load_before = os.getloadavg()[0]
    wall_b, mem_b, _, out, cpu_b = run(ours_cmd, REPO)
    summary = json.loads(out) if out.strip() else {}
    results = json.loads((course / "grades" / assignment / "results.json").read_text())
    per_b = statistics.median(r["seconds"] for r in results)

    nb_cmd = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--create", "--force",
              "--ExecutePreprocessor.timeout=120"]
    wall_n, mem_n, stamps, _, cpu_n = run(nb_cmd, course, marker="Autograding")
    load_after = os.getloadavg()[0]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    per_n = statistics.median(gaps) if gaps else wall_n / max(len(students), 1)

    # agreement on full marks per test cell
    scores = nbgrader_scores(course / "gradebook.db", assignment,
                             [(r["student"], t["grade_id"]) for r in results for t in r["tests"]])
    agree = total = 0
    for r in results:
        for t in r["tests"]:
            key = (r["student"], t["grade_id"])
            if key in scores:
                nb_full = scores[key][0] >= scores[key][1] - 1e-9
                agree += nb_full == t["result"]["passed"]
                total += 1
    row = {"assignment": assignment, "n": len(students), "wall_b": wall_b, "wall_n": wall_n, "per_b": per_b,
           "per_n": per_n, "mem_b": mem_b, "mem_n": mem_n, "agree": agree, "cells": total,
           "isolation": summary.get("isolation", "?"), "mean": summary.get("mean"),
           "max_points": summary.get("max_points"), "cpu_b": cpu_b, "cpu_n": cpu_n,
           "load": (load_before, load_after)}
    print()
    print(f"== {assignment}: {row['n']} submissions")
    print(f"{'':24}{'backprop grade':>16}{'nbgrader autograde':>20}")
    print(f"{'isolation':24}{row['isolation']:>16}{'none (kernel)':>20}")
    print(f"{'per submission, median':24}{per_b:>15.3f}s{per_n:>19.3f}s")
    print(f"{'total wall time':24}{wall_b:>15.1f}s{wall_n:>19.1f}s")
    print(f"{'CPU (user+sys, tree)':24}{cpu_b:>15.1f}s{cpu_n:>19.1f}s")
    print(f"{'CPU per submission':24}{cpu_b / row['n']:>15.3f}s{cpu_n / row['n']:>19.3f}s")
    print(f"{'peak memory (tree RSS)':24}{mem_b / 2**20:>14.0f}MB{mem_n / 2**20:>18.0f}MB")
    print(f"load average (1 min) before/after: {load_before:.1f} / {load_after:.1f}")
    print(f"throughput ratio backprop/nbgrader: {wall_n / wall_b:.1f}x (CPU ratio {cpu_n / max(cpu_b, 1e-9):.1f}x); "
          f"mean score {row['mean']} / {row['max_points']}")
    if total:
        print(f"full-marks agreement per test cell: {agree}/{total}")
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="submissions per assignment (default 100)")
    ap.add_argument("--workers", type=int, default=2, help="backprop grade workers (default 2)")
    ap.add_argument("--assignments", nargs="+", default=list(ASSIGNMENTS), choices=ASSIGNMENTS)
    ap.add_argument("--keep", type=Path, default=None, help="build the course here and keep it")
    args = ap.parse_args(argv)

    from grader.authoring.course import generate

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-grade-"))
    course = (root / "course").resolve()
    if course.exists():
        shutil.rmtree(course)
    print(f"course: {course}; {os.cpu_count()} CPUs")
    generate(list(args.assignments), course)
    rows = [bench_assignment(course, a, args.n, args.workers) for a in args.assignments]

    print()
    print("| assignment | n | backprop grade: total, median, CPU per submission, peak "
          "| nbgrader autograde: total, median, CPU per submission, peak "
          "| throughput ratio (CPU ratio) | same full marks per cell | load |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['assignment']}` | {r['n']} | {r['wall_b']:.1f} s, {r['per_b']:.2f} s, {r['cpu_b'] / r['n']:.2f} s, "
              f"{r['mem_b'] / 2**20:.0f} MB "
              f"| {r['wall_n']:.1f} s, {r['per_n']:.2f} s, {r['cpu_n'] / r['n']:.2f} s, {r['mem_n'] / 2**20:.0f} MB "
              f"| **{r['wall_n'] / r['wall_b']:.1f}×** ({r['cpu_n'] / max(r['cpu_b'], 1e-9):.1f}×) "
              f"| {r['agree']}/{r['cells']} | {r['load'][0]:.0f}–{r['load'][1]:.0f} |")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
