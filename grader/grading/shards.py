"""A class graded in shards on several machines, and joined again.

``backprop grade ... --shard K/N`` grades the students whose id hashes to shard K of N (a
hash of the id alone: shards stay balanced, and a student keeps their shard as others are
added) into its own output folder, and leaves ``shard.json`` there saying what it holds. A
shard never writes the course's gradebook.db or ``autograded/`` (N jobs writing one SQLite
file at once is what a cluster must not do): the merge does, once.

``backprop merge OUT1 OUT2 ... --out DIR`` checks that the folders are exactly the N shards
of one split of one class and assignment, graded by the same grader against the same course,
with no student twice; copies their records into DIR; and writes every output from them with
the steps a single run uses (late policy, ``gradebook.write_outputs``, formgrader's files):
gradebook.csv, results.json, feedback, class report and nbgrader's gradebook.db are then
what one ``backprop grade`` of the whole class gives.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SHARD_FILE = "shard.json"
FORMAT = 1


class ShardError(Exception):
    """Shards that cannot be merged, or a malformed --shard; a TA-facing message."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise ShardError(f"--shard takes K/N with 1 <= K <= N (e.g. 2/8), not {text!r}")
    return int(m.group(1)), int(m.group(2))


def shard_of(student: str, n: int) -> int:
    """The shard (1..n) of a student id: a hash of the id alone."""
    digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def class_digest(subs: list) -> str:
    """Which class the shards were cut from: every discovered submission (who, which notebook,
    when), so shards graded before and after a student (re)submitted do not merge."""
    lines = sorted(f"{s.student}\t{s.sha256}\t{s.submitted_at or ''}" for s in subs)
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


def course_identity(course: Path | None, assignment: str) -> str | None:
    """The course a shard was graded against, by content (its mount point may differ between
    nodes): the generated source notebook of the assignment and the course's nbgrader config.
    None when there is no generated course (grading from the template alone)."""
    if course is None:
        return None
    files = [Path(course) / "source" / assignment / f"{assignment}.ipynb", Path(course) / "nbgrader_config.py"]
    if not files[0].is_file():
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes() if f.is_file() else b"")
        h.update(b"\0")
    return h.hexdigest()


def select(subs: list, shard: tuple[int, int]) -> list:
    """The submissions of shard K of N, in discovery order."""
    k, n = shard
    return [s for s in subs if shard_of(s.student, n) == k]


def clear_marker(out: Path) -> None:
    """Before a shard is graded: a folder interrupted mid-run holds no marker, so no merge takes it."""
    (Path(out) / SHARD_FILE).unlink(missing_ok=True)


def write_marker(out: Path, *, assignment: str, shard: tuple[int, int], students: list[str], everyone: list,
                 grader: str, course: str | None, path: Path) -> None:
    """``shard.json``: what the merge checks (``check``). ``everyone``: the class's submissions."""
    from .store import write_json_atomic

    write_json_atomic(Path(out) / SHARD_FILE, {
        "format": FORMAT, "assignment": assignment, "shard": list(shard), "students": sorted(students),
        "class": {"size": len(everyone), "digest": class_digest(everyone)}, "grader": grader, "course": course,
        "submissions": str(Path(path).resolve())})


@dataclass
class Shard:
    folder: Path
    assignment: str
    k: int
    n: int
    students: list[str]
    class_size: int
    class_digest: str
    grader: str
    course: str | None
    submissions: Path

    @property
    def name(self) -> str:
        return f"{self.k}/{self.n} ({self.folder})"


def read(folder: Path) -> Shard:
    folder = Path(folder)
    marker = folder / SHARD_FILE
    try:
        m = json.loads(marker.read_text(encoding="utf-8"))
        k, n = (int(x) for x in m["shard"])
        return Shard(folder, str(m["assignment"]), k, n, [str(s) for s in m["students"]], int(m["class"]["size"]),
                     str(m["class"]["digest"]), str(m["grader"]), m.get("course"), Path(m["submissions"]))
    except FileNotFoundError:
        why = "does not exist" if not folder.exists() else f"has no {SHARD_FILE}"
        raise ShardError(f"{folder} {why}: not the output folder of a finished `backprop grade --shard K/N`") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ShardError(f"{marker}: unreadable ({type(e).__name__}: {e})") from None


def check(shards: list[Shard]) -> None:
    """Exactly the N shards of one split of one class and assignment, one grader, one course,
    every student in the shard their id hashes to, nobody twice."""
    if not shards:
        raise ShardError("no shard folders given")

    def same(attr: str, what: str) -> None:
        values = {getattr(s, attr) for s in shards}
        if len(values) > 1:
            raise ShardError(f"shards of different {what}: " + "; ".join(f"{s.name}: {getattr(s, attr)}"
                                                                         for s in shards[:4]))

    same("assignment", "assignments")
    same("n", "splits (N)")
    n = shards[0].n
    seen: dict[int, Path] = {}
    for s in shards:
        if s.k in seen:
            raise ShardError(f"shard {s.k}/{n} given twice: {seen[s.k]} and {s.folder}")
        seen[s.k] = s.folder
    missing = [f"{k}/{n}" for k in range(1, n + 1) if k not in seen]
    if missing:
        raise ShardError(f"missing shard(s) {', '.join(missing)}: a merge needs every shard of the split")
    if len({s.course for s in shards}) > 1:
        raise ShardError("shards graded against different courses (their source notebook or nbgrader_config.py "
                         "differ); grade every shard against one course")
    if len({s.grader for s in shards}) > 1:
        raise ShardError("shards graded by different versions of the grader or the suite; grade them again with one")
    if len({(s.class_digest, s.class_size) for s in shards}) > 1:
        raise ShardError("shards cut from different classes (the submissions changed between shards: a student "
                         "added, removed or resubmitted); grade every shard again from the same submissions")
    owner: dict[str, Path] = {}
    for s in shards:
        for student in s.students:
            if student in owner:
                raise ShardError(f"overlapping shards: {student} is in {owner[student]} and {s.folder}")
            owner[student] = s.folder
            if shard_of(student, n) != s.k:
                raise ShardError(f"{s.folder}: {student} belongs to shard {shard_of(student, n)}/{n}, not {s.k}/{n}")
    if len(owner) != shards[0].class_size:
        raise ShardError(f"the shards hold {len(owner)} student(s) but their class has {shards[0].class_size}")


def merge(folders: list[Path], out: Path, course: Path, nbgrader: bool = True, reports: bool = True) -> dict:
    """Join shard folders into ``out``; every output written as one run would. Returns the summary."""
    from . import autograded, late
    from .context import load_context
    from .gradebook import nbgrader_db, write_outputs
    from .store import Store

    shards = sorted((read(Path(f)) for f in folders), key=lambda s: s.k)
    check(shards)
    out = Path(out)
    if any(out.resolve() == s.folder.resolve() for s in shards):
        raise ShardError(f"--out {out} is one of the shards; merge into a folder of its own")
    assignment = shards[0].assignment
    ctx = load_context(assignment, course)
    if ctx.fingerprint != shards[0].grader:
        raise ShardError("the shards were graded by another version of the grader or the suite than this one; "
                         "merge with the grader that graded them, or grade them again")
    here = course_identity(course, assignment)
    if shards[0].course is not None and here is not None and here != shards[0].course:
        raise ShardError(f"the shards were graded against another course than {course} (its source notebook or "
                         "nbgrader_config.py differ)")
    records = []
    for s in shards:
        src = Store(s.folder)
        for student in s.students:
            rec = src.load(student)
            if rec is None or rec.get("student") != student or rec.get("grader") != s.grader:
                raise ShardError(f"{s.folder}: no current record of {student}; grade shard {s.k}/{s.n} again")
            records.append(rec)
    db = nbgrader_db(course) if nbgrader else None
    use_db = db is not None and db.is_file()
    data, root = _submitted(shards, records, assignment) if use_db else ({}, None)

    store = Store(out)
    store.check_writable()
    store.stale_temp_files()
    for rec in records:
        store.save(rec)
    students = {r["student"] for r in records}
    late_note = late.for_batch(course, assignment, store, students) if use_db else None
    summaries = [_summary(s.folder) for s in shards]
    isolations = sorted({x.get("isolation") for x in summaries if x.get("isolation")})
    limits = sorted({x.get("limits") for x in summaries if x.get("limits")})  # memory and CPU bounds (cgroups)
    run = {"isolation": "+".join(isolations) or None, "limits": "+".join(limits) or None,
           "graded_now": sum(int(x.get("graded_now") or 0) for x in summaries),
           "reused": sum(int(x.get("reused") or 0) for x in summaries),
           "grader_errors": [e for x in summaries for e in (x.get("grader_errors") or [])],
           "seconds": round(sum(float(x.get("seconds") or 0.0) for x in summaries), 2),
           "messages": [f"merged {len(shards)} shards of {assignment}: {len(students)} submission(s)"],
           "unmatched": summaries[0].get("unmatched") or []}  # every shard lists the whole export's
    summary = write_outputs(out, assignment, ctx.tests, students=students, course=course if nbgrader else None,
                            reports=reports, run=run, max_points=ctx.max_points)
    if use_db:
        summary["outputs"]["late"] = late_note
        if root is None:
            summary["outputs"]["autograded"] = (f"nbgrader autograded/ NOT written: the submissions graded "
                                                f"({shards[0].submissions}) are not readable here")
        else:
            subs = [_Sub(r["student"], data.get(r["student"])) for r in records]
            autograded.for_batch(course, assignment, subs, summary, out, root)
    return summary


@dataclass
class _Sub:
    """What ``autograded.for_batch`` needs of a discovered submission."""
    student: str
    data: bytes | None


def _submitted(shards: list[Shard], records: list[dict], assignment: str) -> tuple[dict, Path | None]:
    """The submitted notebooks the shards graded (formgrader's autograded/ copies are built
    from them), checked against the records: a notebook changed since is refused."""
    from .discover import DiscoveryError, discover

    root = next((s.submissions for s in shards if s.submissions.exists()), None)
    if root is None:
        return {}, None
    try:
        subs = {s.student: s for s in discover(root, assignment)}
    except DiscoveryError:
        return {}, None
    data = {}
    for rec in records:
        sub = subs.get(rec["student"])
        if sub is None or sub.sha256 != rec.get("sha256"):
            raise ShardError(f"{rec['student']}'s submission under {root} changed since it was graded; "
                             "grade its shard again")
        data[rec["student"]] = sub.data
    return data, root


def _summary(folder: Path) -> dict:
    try:
        return json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "merge", help="join the output folders of `backprop grade --shard K/N` into one",
        description="Join the shards of a class graded with `backprop grade --shard K/N` (a Slurm job array, a "
                    "Kubernetes Indexed Job) into one output folder: gradebook.csv, results.json, feedback, the "
                    "class report, nbgrader's gradebook.db and autograded/, as one run of the whole class writes "
                    "them. Refuses missing, repeated or overlapping shards, and shards of different splits, "
                    "classes, assignments, courses or grader versions.")
    p.add_argument("shards", type=Path, nargs="+", metavar="SHARD_DIR")
    p.add_argument("--course", type=Path, default=Path("course"), help="nbgrader course directory (default: course/)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <course>/grades/<A>/)")
    p.add_argument("--no-nbgrader", action="store_true", help="do not write into <course>/gradebook.db")
    p.add_argument("--no-report", action="store_true", help="skip the feedback HTML and class report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


def run(args) -> int:
    from grader.files import WriteError

    from .context import ContextError
    from .gradebook import format_summary

    try:
        first = read(args.shards[0])
        out = args.out or Path(args.course) / "grades" / first.assignment
        summary = merge(args.shards, out, args.course, nbgrader=not args.no_nbgrader, reports=not args.no_report)
    except (ShardError, ContextError) as e:
        print(f"backprop merge: error: {e}", file=sys.stderr)
        return 2
    except WriteError as e:
        print(f"backprop merge: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(format_summary(summary))
    return 1 if summary["grader_errors"] else 0
