"""``backprop generate [ASSIGNMENT ...] [--course DIR]``."""
from __future__ import annotations

import sys

from .template import COURSE_ID, TemplateError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate", help="render assignment templates into an nbgrader course (source + release)",
        description="Render assignments/<a>/<a>.py + suite.toml into <course>/source/<a>/<a>.ipynb, "
                    "then run nbgrader generate_assignment into <course>/release/<a>/.")
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                   help="assignment names (default: every folder under assignments/)")
    p.add_argument("--course", default="course", help="nbgrader course directory (default: course/)")
    p.add_argument("--course-id", default=COURSE_ID, help=f"nbgrader course id (default: {COURSE_ID})")
    p.add_argument("--no-verify", action="store_true",
                   help="do not run the notebooks (by default the source notebook must earn full marks "
                        "and the release's stubs must fail every test cleanly)")
    p.add_argument("--no-audit", action="store_true",
                   help="skip `backprop audit` (quick iterations only: the course is then written without "
                        "knowing whether its hidden suites catch a wrong solution)")
    p.add_argument("--audit-workers", type=int, default=2, metavar="N",
                   help="worker processes of the audit (default 2)")
    p.set_defaults(func=_run)


def _audit_first(args) -> int | None:
    """Audit the assignments before anything is written: 1 (refuse) when an audit fails."""
    from .assignment import discover
    if args.no_audit:
        print("backprop generate: WARNING: --no-audit: the hidden suites are NOT audited; do not release "
              "this course before `backprop audit` passes", file=sys.stderr)
        return None
    names = list(args.assignments) or discover()
    if set(names) - set(discover()):
        return None  # generate names the unknown assignment
    from grader.audit.gate import gate
    print(f"backprop generate: auditing {', '.join(names)} (--no-audit skips this) ...", file=sys.stderr, flush=True)
    if gate(names, workers=args.audit_workers, log=lambda line: print(line, file=sys.stderr, flush=True)):
        return None
    print("backprop generate: error: the audit failed; no course written (`backprop audit ASSIGNMENT` prints "
          "the kill matrix)", file=sys.stderr)
    return 1


def _run(args) -> int:
    from .course import generate, precheck

    try:
        precheck(args.assignments)  # a missing piece is named before minutes of audit
    except TemplateError as e:
        print(f"backprop generate: error: {e}", file=sys.stderr)
        return 1
    refused = _audit_first(args)
    if refused is not None:
        return refused
    try:
        builds = generate(args.assignments, args.course, course_id=args.course_id, verify=not args.no_verify)
    except TemplateError as e:
        print(f"backprop generate: error: {e}", file=sys.stderr)
        return 1
    for b in builds:
        a = b.assignment
        print(f"{b.name}: {len(a.cells)} cells, {len(a.tests)} tests, {a.total_points:g} points -> "
              f"{b.source_dir / (b.name + '.ipynb')}, {b.release_dir / (b.name + '.ipynb')}")
    return 0
