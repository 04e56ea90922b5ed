"""What watching NumPy's functions during backward costs, per probed case.

    python bench/forensics_numpy.py [--assignment tensor_edf] [--rounds 20]

In-process, on the source notebook's namespace (the correct solution): every test the child
runs with forensics (component, backward_loop, ...) is probed with its hidden specs by
``forensics_probe_all``, three ways: plain ``probe`` (no forensics), forensics without the
NumPy watch (``grader/checks/forensics_numpy.py`` switched off), and forensics as shipped.
Prints CPU microseconds per case (best of the rounds: the machine may be loaded) and the
ratios. Nothing here asserts.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assignment", default="tensor_edf")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()

    from grader.audit.namespace import build, notebook_cells
    from grader.authoring.assignment import load_assignment
    from grader.checks import forensics as child
    from grader.checks import hidden
    from grader.checks.base import probe
    from grader.grading.context import load_context

    ns, errors = build(notebook_cells(load_assignment(args.assignment)))
    assert not errors, errors
    work = [hidden.build_specs(t) for t in load_context(args.assignment).tests if t["check"] in child.FORENSIC_CHECKS]
    cases = sum(len(specs) for specs in work)
    watch = child._watch_numpy

    def plain() -> None:
        for specs in work:
            [probe(ns, s) for s in specs]

    def forensics() -> None:
        for specs in work:
            child.forensics_probe_all(ns, specs)

    def best(run) -> float:
        times = []
        for _ in range(args.rounds):
            t0 = time.process_time()
            run()
            times.append(time.process_time() - t0)
        return min(times) / cases * 1e6

    base = best(plain)
    child._watch_numpy = lambda st, node: None
    try:
        before = best(forensics)
    finally:
        child._watch_numpy = watch
    after = best(forensics)
    print(f"{args.assignment}: {cases} cases in {len(work)} tests, CPU us per case (best of {args.rounds})")
    print(f"  probe, no forensics:        {base:8.1f}")
    print(f"  forensics, NumPy unwatched: {before:8.1f}   x{before / base:.2f} of probe")
    print(f"  forensics, NumPy watched:   {after:8.1f}   x{after / base:.2f} of probe, "
          f"x{after / before:.3f} of unwatched (+{after - before:.1f} us per case)")


if __name__ == "__main__":
    main()
