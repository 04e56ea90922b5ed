"""``backprop grade PATH --assignment A [--course DIR] [--workers N] [--out DIR] [--force]
[--keep-others] [--shard K/N] [--quiet] [--json] [--hidden-seed KEY]`` (and ``backprop demo``).

Ctrl-C stops the batch at once (exit 130) with what is saved; a file that cannot be written
(disk full, no permission) is one line naming it. Either way the records already saved
stay valid and the same command resumes.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from grader.runner import IsolationError, Limits

from .context import ContextError
from .discover import DiscoveryError
from .execute import Options
from .seeds import NO_SECRET, SecretError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "grade", help="grade a class of submitted notebooks in isolation",
        description="Grade submitted notebooks: PATH is an nbgrader submitted/ tree "
                    "(<student>/<A>/<A>.ipynb), a folder of .ipynb files (student id = file name), "
                    "a zip of them, or one notebook. Student code runs in an isolated child; "
                    "verdicts are made in this process from the hidden suite.")
    p.add_argument("path", type=Path, metavar="PATH")
    p.add_argument("--assignment", "-a", required=True)
    p.add_argument("--course", type=Path, default=Path("course"), help="nbgrader course directory (default: course/)")
    p.add_argument("--workers", type=int, default=2, help="submissions graded at once (default: 2)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <course>/grades/<A>/)")
    p.add_argument("--force", action="store_true", help="regrade everything, even unchanged submissions")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per cell and per probe call (default: 5)")
    p.add_argument("--budget", type=float, default=120.0, help="wall seconds per submission (default: 120)")
    p.add_argument("--memory-mb", type=int, default=1024, help="address-space limit of a child (default: 1024)")
    p.add_argument("--cpu-seconds", type=int, default=60, help="CPU seconds of a child (default: 60)")
    p.add_argument("--rlimits-only", action="store_true",
                   help="do not use bubblewrap (testing only: much weaker isolation)")
    p.add_argument("--no-nbgrader", action="store_true", help="do not write into <course>/gradebook.db")
    p.add_argument("--no-report", action="store_true",
                   help="skip the feedback HTML and class report (`backprop report` writes them later)")
    p.add_argument("--keep-others", action="store_true",
                   help="keep the records of students not in PATH in the output folder (default: they are "
                        "moved to <out>/submissions/.stale/<time>/ so every output describes this input)")
    p.add_argument("--shard", metavar="K/N", default=None,
                   help="grade only shard K of N (students split by a hash of their id) into --out (default: "
                        "<course>/grades/<A>-shards/K-of-N/), e.g. one task of a job array; gradebook.db and "
                        "autograded/ are left to `backprop merge`, which joins the N output folders")
    p.add_argument("--hidden-seed", type=int, default=None, metavar="KEY",
                   help="grade with this hidden-seed key (a record's hidden_seed.key) instead of the one the course "
                        "secret gives each submission: reproduces a recorded verdict wherever the notebook now is")
    p.set_defaults(func=run)

    d = subparsers.add_parser("demo", help="generate the course, build a sample class of tensor_edf "
                                           "submissions and grade it")
    d.add_argument("--course", type=Path, default=Path("course"))
    d.add_argument("--workers", type=int, default=2)
    d.set_defaults(func=_demo)


def options_from(args) -> Options:
    limits = Limits(timeout=args.timeout, memory_bytes=args.memory_mb << 20, cpu_seconds=args.cpu_seconds)
    return Options(limits=limits, budget=args.budget)


def run(args) -> int:
    from grader.files import WriteError

    from .batch import Request, format_summary, grade, progress_printer
    from .shards import ShardError, parse_shard
    from .store import Store

    try:
        shard = parse_shard(args.shard) if args.shard is not None else None
    except ShardError as e:
        print(f"backprop grade: error: {e}", file=sys.stderr)
        return 2

    printer = None if (args.quiet or args.json) else progress_printer()
    seen = {"done": 0, "total": None}

    def progress(done: int, total: int, rec) -> None:
        seen["done"], seen["total"] = done, total
        if printer:
            printer(done, total, rec)

    out = args.out
    if shard and out is None:  # never the whole class's folder: N jobs would share it
        out = Path(args.course) / "grades" / f"{args.assignment}-shards" / f"{shard[0]}-of-{shard[1]}"
    req = Request(path=args.path, assignment=args.assignment, course=args.course, out=out,
                  workers=max(1, args.workers), force=args.force, options=options_from(args),
                  isolation="rlimits-only" if args.rlimits_only else None,
                  nbgrader=not args.no_nbgrader, reports=not args.no_report, keep_others=args.keep_others,
                  progress=progress, shard=shard, hidden_seed=args.hidden_seed)
    created = not req.out_dir.exists()
    try:
        Store(req.out_dir).check_writable()
        summary = grade(req)
    except (ContextError, DiscoveryError, IsolationError, SecretError) as e:
        if created:  # a mistyped assignment or path leaves no empty output folder behind
            for d in (req.out_dir / "submissions", req.out_dir):
                try:
                    d.rmdir()
                except OSError:
                    break
        print(f"backprop grade: error: {e}", file=sys.stderr)
        return 2
    except WriteError as e:
        print(f"backprop grade: {e}; {seen['done']} of {seen['total'] or '?'} submissions are saved, "
              "rerun the same command to resume once it can be written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        total = seen["total"]
        print("\nbackprop grade: interrupted: " + (f"{seen['done']} of {total} saved" if total is not None else
                                                  "before any submission was graded")
              + "; rerun the same command to continue", file=sys.stderr)
        # end now: a worker thread may still wait on a child of the closed pool, and interpreter
        # shutdown would join it; every saved record is already on disk (fsync'd, atomic)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    if args.json:
        print(json.dumps(summary, indent=1, sort_keys=True))
    elif not args.quiet:
        print(format_summary(summary))
    if summary["isolation_warning"] and (args.quiet or args.json):
        print(summary["isolation_warning"], file=sys.stderr)
    if args.quiet or args.json:
        for m in summary.get("messages") or []:
            if m.startswith(NO_SECRET):
                print(m, file=sys.stderr)
    if summary["grader_errors"]:
        for e in summary["grader_errors"]:
            print(f"backprop grade: grader error: {e}", file=sys.stderr)
        return 1
    return 0


def _demo(args) -> int:
    from .demo import main

    return main(["--course", str(args.course), "--workers", str(args.workers)])
