"""Speed of ``backprop audit``: every assignment, against the 3-minute budget on 2 cores.

Run: .venv/bin/python bench/audit_speed.py [--workers 2] [--seed-sets 3] [--json-dir DIR] [--full] [ASSIGNMENT ...]

Audits each assignment (mutants under every seed set, lazy baselines, coverage; the course
leak check once) in one pool of worker processes, as ``backprop audit`` does with no
arguments, and prints per assignment: mutants, wall seconds, CPU seconds (this process and
its workers), mutants per wall second; then the total and its ratio to the budget
(target <= 1.0). The machine's load average is printed too: on a shared machine the wall
time grows with it, the CPU time much less.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

from grader.audit import leaks  # noqa: E402
from grader.audit.core import Options  # noqa: E402
from grader.audit.gate import audit_one  # noqa: E402
from grader.audit.report import matrix, write_json  # noqa: E402
from grader.audit.run import Pool  # noqa: E402
from grader.authoring.assignment import discover  # noqa: E402

BUDGET = 180.0  # seconds, all assignments, 2 cores


def cpu(pool=None) -> float:
    """CPU seconds of this process, its exited children and the pool's live workers."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    for w in (pool.workers if pool else []):
        try:
            fields = Path(f"/proc/{w['proc'].pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("assignments", nargs="*")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed-sets", type=int, default=3)
    ap.add_argument("--json-dir", help="also write each report (with the course leak check) here")
    ap.add_argument("--full", action="store_true",
                    help="as `backprop audit --full` (the learning tests for every mutant; make test "
                         "audits mlp_training so)")
    args = ap.parse_args()
    names = args.assignments or discover()
    opts = Options(n_sets=args.seed_sets, workers=args.workers, full=args.full)
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"{'assignment':<16} {'mutants':>7} {'wall s':>8} {'cpu s':>8} {'mutants/s':>9}  verdict")
    t_all, c_all = time.perf_counter(), cpu()
    with Pool(opts.workers, opts.timeout) as pool:
        for name in names:
            t0, c0 = time.perf_counter(), cpu(pool)
            report = audit_one(name, opts, pool=pool)
            wall, used = time.perf_counter() - t0, cpu(pool) - c0
            if args.json_dir:
                write_json(report, Path(args.json_dir) / f"{name}.json")
                (Path(args.json_dir) / f"{name}.txt").write_text(matrix(report) + "\n" + leaks.text(report["leaks"]))
            n = len(report["mutants"])
            print(f"{name:<16} {n:>7} {wall:>8.1f} {used:>8.1f} {n / wall:>9.1f}  "
                  f"{'passed' if report['ok'] else 'failed'}", flush=True)
    t0 = time.perf_counter()
    leaks.check()
    leak_s = time.perf_counter() - t0
    total, used = time.perf_counter() - t_all, cpu() - c_all
    print(f"{'leak check':<16} {'':>7} {leak_s:>8.1f}")
    print(f"total: {total:.1f} s wall, {used:.1f} s CPU; ratio to the {BUDGET:.0f} s budget: "
          f"{total / BUDGET:.2f} (wall), {used / (2 * BUDGET):.2f} (CPU over 2 cores)")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
