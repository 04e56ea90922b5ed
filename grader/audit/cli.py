"""``backprop audit [ASSIGNMENT ...]``: is each hidden suite adequate? Exit 1 if not."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "audit", help="grade mutants of the reference and lazy baselines with the hidden suite",
        description="Derive mutants of every graded unit from the reference's AST, grade each with every "
                    "hidden test under several seed sets, grade the lazy baselines, measure branch "
                    "coverage and check the course for leaked solutions. Exit status 1 when a criterion "
                    "fails.")
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                   help="assignment names (default: every folder under assignments/)")
    p.add_argument("--seed-sets", type=int, default=3, help="seed sets (the suite's own + derived; default 3)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--only", metavar="UNIT", help="audit one unit (e.g. Sigmoid.backward), class or test id")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per mutant before it is killed")
    p.add_argument("--json", metavar="PATH",
                   help="write the JSON here (one assignment), or into this directory (several); "
                        "default course/audit/<a>.json")
    p.add_argument("--order", metavar="A,B,...",
                   help="the course's assignment order for the leak check (default: scalar_backprop, "
                        "forward_mode, tensor_edf, mlp_training, then the others alphabetically)")
    p.add_argument("--charged-once-report-only", action="store_true",
                   help="report, but do not fail on, a mutant wrong on the whole domain that keeps points on "
                        "its test or loses points on another (enforced by default)")
    p.add_argument("--all-sets-elsewhere", action="store_true",
                   help="grade each mutant on the other tests under every seed set too (default: their own "
                        "hidden seeds; the owning test always runs under every set)")
    p.add_argument("--full", action="store_true",
                   help="grade every mutant with the tests that need the notebook's long cells (a network's "
                        "training) too; by default a mutant owned by another test is graded without those "
                        "cells and those tests show '?' in its row")
    p.add_argument("--root", metavar="DIR", help="the assignments directory (default: the repository's assignments/)")
    p.add_argument("--summary", action="store_true", help="print survivors and the summary, not the matrix")
    p.set_defaults(func=_run)


def _run(args) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    from grader.authoring.assignment import discover

    from . import leaks
    from .core import Options
    from .gate import audit_one
    from .report import matrix, write_json
    from .run import Pool, ReferenceFails

    from grader.authoring.assignment import ASSIGNMENTS

    root = Path(args.root).resolve() if args.root else ASSIGNMENTS
    names = args.assignments or discover(root)
    unknown = sorted(set(names) - set(discover(root)))
    if unknown:
        print(f"backprop audit: unknown assignment(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    opts = Options(n_sets=args.seed_sets, workers=args.workers, only=args.only, timeout=args.timeout,
                   enforce_charged_once=not args.charged_once_report_only,
                   all_sets_elsewhere=args.all_sets_elsewhere, full=args.full)
    order = args.order.split(",") if args.order else None
    ok = True
    with Pool(opts.workers, opts.timeout) as pool:
        for name in names:
            def progress(done, total, name=name):
                if done % 50 == 0 or done == total:
                    print(f"[{name}: {done}/{total} graded]", file=sys.stderr, flush=True)
            try:
                report = audit_one(name, opts, root=root, pool=pool, order=order, progress=progress)
            except ReferenceFails as e:  # the instructor's reference itself: nothing to audit against
                print(f"backprop audit {name}: FAILED: {e}", file=sys.stderr, flush=True)
                ok = False
                continue
            print(matrix(report, full=not args.summary), flush=True)
            print(leaks.text(report["leaks"]), flush=True)
            print()
            if args.json and len(names) == 1 and not args.json.endswith("/"):
                path = Path(args.json)
            else:
                path = Path(args.json or "course/audit") / f"{name}.json"
            write_json(report, path)
            print(f"wrote {path}")
            ok = ok and report["ok"]
    return 0 if ok else 1
