"""Shards of a class: the time and peak memory of one `backprop grade --shard K/N` job, for N
in 1, 2, 4, 8, against the whole class graded as one job.

    python bench/shards.py [--n 1000] [--shards 1 2 4 8] [--workers 2] [--merge] [--keep DIR]

Builds one course in a temporary folder (`backprop generate`) and a tensor_edf class of N
students whose notebooks are copies of a few real ones (the source notebook, correct and
buggy corpus variants, the release notebook with every stub left). For each N it runs shard
1/N as its own process, as one task of a job array would (every output on), and prints its
size, wall time, time per submission and peak memory (summed RSS of the process tree), and
the speed-up over N = 1 beside the ideal one (the ratio of shard sizes): a shard's time
scales linearly when the two agree. ``--merge`` also grades the other shards of the largest
N and times `backprop merge` of them. One run of each; nothing here asserts.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grade_vs_nbgrader import TreeMemory  # noqa: E402 - the same peak-memory sampler as that benchmark

ASSIGNMENT = "tensor_edf"
BACKPROP = [sys.executable, "-m", "grader.cli"]


def build_class(course: Path, n: int) -> Path:
    """``n`` submitted notebooks, each a byte copy of one of a few real ones."""
    from grader.grading import sample

    source = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
    release = sample.load_notebook(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    variants = [source, sample.as_submitted(release)]
    for kind, count in (("correct", 2), ("buggy", 4)):
        variants += [v for p in sample.corpus(kind) if (v := sample.with_variant(source, p)) is not None][:count]
    texts = [(json.dumps(v, indent=1, sort_keys=True) + "\n").encode() for v in variants]
    submitted = course / "submitted"
    for i in range(n):
        folder = submitted / f"s{i:04d}" / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_bytes(texts[i % len(texts)])
    return submitted


def timed(cmd: list, cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak tree RSS (bytes) of one command."""
    t0 = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mem = TreeMemory(p.pid)
    out, err = p.communicate()
    wall, peak = time.perf_counter() - t0, mem.stop()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd[2:6]))} ... exited {p.returncode}\n{err[-2000:]}")
    return wall, peak


def grade_shard(course: Path, submitted: Path, out: Path, k: int, n: int, workers: int) -> tuple[float, int, int]:
    wall, peak = timed(BACKPROP + ["grade", submitted, "-a", ASSIGNMENT, "--course", course, "--shard", f"{k}/{n}",
                                   "--out", out, "--workers", workers, "--quiet"], course.parent)
    size = len(json.loads((out / "shard.json").read_text())["students"])
    return wall, peak, size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="students in the class (default: 1000)")
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4, 8], help="values of N (default: 1 2 4 8)")
    ap.add_argument("--workers", type=int, default=2, help="--workers of each shard job (default: 2)")
    ap.add_argument("--merge", action="store_true", help="grade every shard of the largest N and time the merge")
    ap.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it")
    args = ap.parse_args(argv)
    from grader.authoring.course import generate

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        course = tmp / "course"
        shutil.rmtree(course, ignore_errors=True)
        generate([ASSIGNMENT], course)
        submitted = build_class(course, args.n)
        print(f"class: {args.n} tensor_edf submissions; one shard job per N, --workers {args.workers}; "
              "bubblewrap where available")
        rows = []
        for n in sorted(set(args.shards)):
            wall, peak, size = grade_shard(course, submitted, tmp / f"N{n}" / "shard-1", 1, n, args.workers)
            rows.append((n, size, wall, peak))
            print(f"  N={n}: shard 1/{n}: {size} submission(s), {wall:.1f} s, {peak / 2**20:.0f} MB", flush=True)
        n1, size1, wall1, _ = rows[0]
        print(f"\n{'N':>3} {'shard size':>10} {'wall s':>8} {'s/sub':>7} {'peak MB':>8} {'speed-up':>9} "
              f"{'ideal':>7} {'efficiency':>10}")
        for n, size, wall, peak in rows:
            speedup = wall1 / wall
            ideal = size1 / max(size, 1)
            print(f"{n:>3} {size:>10} {wall:>8.1f} {wall / max(size, 1):>7.2f} {peak / 2**20:>8.0f} "
                  f"{speedup:>8.2f}x {ideal:>6.2f}x {speedup / ideal:>9.0%}")
        print(f"(speed-up: time of shard 1/{n1} over time of shard 1/N; ideal: the ratio of their sizes; "
              "efficiency below 100% is each job's fixed start-up cost)")
        if len(rows) > 1:  # wall = fixed + per-submission x size, least squares over the shards
            xs, ys = [r[1] for r in rows], [r[2] for r in rows]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            sxx = sum((x - mx) ** 2 for x in xs)
            if sxx > 0:
                slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
                fixed = my - slope * mx
                worst = max(abs(y - (fixed + slope * x)) / y for x, y in zip(xs, ys))
                print(f"linear fit: wall = {fixed:.1f} s per job + {slope:.2f} s per submission "
                      f"(worst deviation {worst:.0%}); a {args.n}-student class in N shards: "
                      + ", ".join(f"N={n} {fixed + slope * args.n / n:.0f} s" for n, *_ in rows))
        if args.merge:
            n = max(args.shards)
            folders = [tmp / f"N{n}" / "shard-1"]
            for k in range(2, n + 1):
                folders.append(tmp / f"N{n}" / f"shard-{k}")
                grade_shard(course, submitted, folders[-1], k, n, args.workers)
            wall, peak = timed(BACKPROP + ["merge", *folders, "--course", course, "--out", tmp / "merged", "--quiet"],
                               course.parent)
            print(f"\nmerge of {n} shards ({args.n} submissions, every output and gradebook.db): {wall:.1f} s, "
                  f"{peak / 2**20:.0f} MB")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
