"""``backprop grade`` as a pipeline of small named steps over a class of submissions:

    discover -> parse -> match cells -> run in child -> judge -> score -> persist
             -> gradebook (CSV, JSON, nbgrader db) / feedback / summary

``grade(request)`` is the Python entry point the CLI, the demo, the benchmark and the
tests use. Grading a submission never raises for anything the submission does.
"""
from __future__ import annotations

import concurrent.futures
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from grader.runner import ChildPool, available_isolation

from . import autograded, gradebook, late, seeds, shards
from .gradebook import ISOLATION_WARNING, format_summary  # noqa: F401 - the CLI and the demo print it
from .context import Checks, Context, load_context
from .discover import Submission, discover, identity
from .execute import (AST_LOCK, REVIEW, Options, child_checks_source, mlp_data, preload_modules,
                      run_submission, runner_result)
from .notebook import NotebookError, match, parse
from .scan import scan
from .store import Store


@dataclass
class Request:
    path: Path
    assignment: str
    course: Path = Path("course")
    out: Path | None = None               # default: <course>/grades/<assignment>
    workers: int = 2
    force: bool = False
    options: Options = field(default_factory=Options)
    isolation: str | None = None          # None: the best available
    checks: Checks | None = None          # None: grader.checks
    nbgrader: bool = True                 # write into <course>/gradebook.db
    keep_others: bool = False             # keep (and report) records of students not in this input
    reports: bool = True                  # feedback HTML + class report (grader.reports)
    progress: object = None               # callable(done, total, record) or None
    shard: tuple[int, int] | None = None  # (K, N): only the students of shard K of N (``shards``)
    hidden_seed: int | None = None        # grade every submission with this recorded key (grading.seeds)
    secret: bytes | None = None           # the course secret, when not in <course>/.backprop/ (Gradescope)

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path(self.course) / "grades" / self.assignment


# -- one submission ------------------------------------------------------------------------

def _test_entries(ctx: Context, results: list[dict], key: int | None = None) -> list[dict]:
    from grader.checks.hidden import hidden_seeds, seeded

    entries = []
    for test, r in zip(ctx.tests, results):
        max_points = float(test["points"])
        entries.append({"id": test["id"], "grade_id": "test_" + test["id"], "target": test.get("target"),
                        "points": round(r["score"] * max_points, 4), "max_points": max_points, "result": r,
                        "seeds": hidden_seeds(seeded(test, key))})  # the cases it faced, to rebuild them
    return entries


def _record(ctx: Context, sub: Submission, isolation: str, hidden_seed: dict) -> dict:
    return {"student": sub.student, "assignment": ctx.name, "sha256": sub.sha256, "source": sub.source,
            "grader": ctx.fingerprint, "hidden_seed": hidden_seed, "status": "graded", "isolation": isolation,
            "notes": list(sub.notes), "cells": [], "tests": [], "total": 0.0, "max": ctx.max_points,
            "flags": list(sub.flags), "seconds": 0.0, **identity(sub)}


def _unreadable(ctx: Context, rec: dict, why: str) -> dict:
    rec["status"], rec["error"] = "error", why
    results = [runner_result(t, "not_graded", f"not graded: {why}") for t in ctx.tests]
    rec["tests"] = _test_entries(ctx, results, rec["hidden_seed"]["key"])
    return rec


def grade_one(pool, ctx: Context, sub: Submission, opts: Options, data: dict | None,
              seeding: seeds.Seeding | None = None) -> dict:
    """discover'd submission -> its record (parse, match, run, judge, score); ``seeding``: where
    its hidden seeds come from (None: the suite's own)."""
    t0 = time.monotonic()
    hidden_seed = (seeding or seeds.Seeding()).for_submission(ctx.name, sub.student, sub.sha256)
    key = hidden_seed["key"]
    rec = _record(ctx, sub, pool.isolation if pool else "none", hidden_seed)
    rec["limits"] = pool.limits_mode if pool else None  # how memory and CPU were bounded (cgroup v1/v2, tmpfs+rlimits)
    if sub.data is None:
        return _finish(_unreadable(ctx, rec, sub.error or "unreadable"), t0)
    try:
        cells = parse(sub.data)
    except NotebookError as e:
        return _finish(_unreadable(ctx, rec, str(e)), t0)
    plan = match(ctx.cells, cells, ctx.replace)
    rec["notes"] += plan.notes
    with AST_LOCK:
        rec["flags"] += scan(plan.cells)
    out = run_submission(pool, ctx, plan, opts, data, key)
    rec["cells"], rec["notes"], rec["flags"] = out.cells, rec["notes"] + out.notes, rec["flags"] + out.flags
    rec["restarts"] = out.restarts
    rec["tests"] = _test_entries(ctx, out.tests, key)
    if out.budget:
        rec["budget"] = out.budget
    if out.error:  # the sandbox failed under it twice: not the student's doing, not a grade
        rec["status"], rec["error"] = "error", out.error
        return _finish(rec, t0)
    codes = {t["result"].get("diagnosis") for t in rec["tests"]}
    rec["status"] = "timeout" if "timeout" in codes else "crashed" if codes & {"crashed", "protocol_error"} else "graded"
    return _finish(rec, t0)


def _finish(rec: dict, t0: float) -> dict:
    rec["total"] = round(sum(t["points"] for t in rec["tests"]), 4)
    rec["seconds"] = round(time.monotonic() - t0, 3)
    return rec


# -- the batch -----------------------------------------------------------------------------

def grade(req: Request) -> dict:
    """Grade everything under ``req.path``; return the summary (also written as summary.json)."""
    t0 = time.monotonic()
    ctx = load_context(req.assignment, req.course, req.checks)
    seeding = seeds.seeding(req.course, req.hidden_seed, req.secret)
    subs = discover(req.path, req.assignment)
    unmatched = getattr(subs, "unmatched", [])  # the export's notebooks of nobody: listed, never graded
    late.stamp(subs, req.path)  # nbgrader's timestamp.txt: the submission time in every record
    store = Store(req.out_dir)
    store.stale_temp_files()
    everyone = list(subs)
    if req.shard:  # gradebook.db and autograded/ are the merge's: N jobs never write one database
        shards.clear_marker(req.out_dir)
        subs = shards.select(subs, req.shard)
    use_nbgrader = req.nbgrader and not req.shard
    todo, reused = [], 0
    for sub in subs:
        rec = None if req.force else store.is_current(sub.student, sub.sha256, ctx.fingerprint)
        # same notebook, but the LMS's metadata, the discovery flags or its hidden seeds changed:
        # grade it again
        if rec and all(rec.get(k) == v for k, v in identity(sub).items()) and set(sub.flags) <= set(rec["flags"]) \
                and rec.get("hidden_seed") == seeding.for_submission(ctx.name, sub.student, sub.sha256):
            reused += 1
        else:
            todo.append(sub)
    isolation = req.isolation or available_isolation()
    limits_mode = None  # known once a pool runs
    grader_errors: list[str] = []
    done = [reused]
    lock = threading.Lock()
    stop = threading.Event()  # Ctrl-C or a failed write: finish nothing more, save nothing half-done
    if req.progress:
        req.progress(reused, len(subs), None)
    if use_nbgrader and todo:
        # nbgrader's import chain takes seconds; pay it while the children work
        threading.Thread(target=_import_quietly, args=("nbgrader.api",), daemon=True).start()
    if todo:
        data = mlp_data(ctx)
        child_checks_source(ctx.checks.public_source)  # once, before the worker threads
        with ChildPool(workers=req.workers, limits=req.options.limits, isolation=isolation,
                       private=(req.course, req.path)) as pool:  # kept from the fallback's children
            isolation, limits_mode = pool.isolation, pool.limits_mode
            preload_modules(pool, ctx)

            def work(sub: Submission):
                if stop.is_set():
                    return
                try:
                    rec = grade_one(pool, ctx, sub, req.options, data, seeding)
                except Exception:  # noqa: BLE001 - a grader bug: report it, keep grading others
                    with lock:
                        grader_errors.append(f"{sub.student}: {traceback.format_exc(limit=5)}")
                    return
                if stop.is_set():
                    return  # its child may have been killed by the interrupt: not a verdict
                store.save(rec)
                with lock:
                    done[0] += 1
                    if req.progress:
                        req.progress(done[0], len(subs), rec)

            ex = concurrent.futures.ThreadPoolExecutor(req.workers)
            try:
                list(ex.map(work, todo))
            except BaseException:
                stop.set()
                ex.shutdown(wait=False, cancel_futures=True)
                raise
            ex.shutdown()
    students = {s.student for s in subs}
    if use_nbgrader:
        _import_quietly("nbgrader.api")  # done already when submissions were graded now
    late_note = late.for_batch(req.course, ctx.name, store, students) if use_nbgrader else None
    messages = [f"shard {req.shard[0]}/{req.shard[1]}: {len(subs)} of the class's {len(everyone)} submission(s); "
                "`backprop merge` joins the shards"] if req.shard else []
    summary = _outputs(req, ctx, students, isolation, len(todo) - len(grader_errors), reused, grader_errors,
                       time.monotonic() - t0, use_nbgrader, messages, limits_mode, unmatched, seeding.warning)
    if use_nbgrader:  # formgrader's files, once the grades are in gradebook.db
        summary.setdefault("outputs", {})["late"] = late_note
        autograded.for_batch(req.course, ctx.name, subs, summary, req.out_dir, req.path)
    if req.shard:
        shards.write_marker(req.out_dir, assignment=ctx.name, shard=req.shard, students=sorted(students),
                            everyone=everyone, grader=ctx.fingerprint,
                            course=shards.course_identity(req.course, ctx.name), path=req.path)
    return summary


# jsonschema (imported by nbgrader.api and nbformat) imports rfc3987-syntax when it is
# installed, and that module compiles an IRI grammar at import: 3.5 s of CPU, as much as
# grading ten tensor_edf submissions. Nothing in grading validates IRIs.
_SKIPPED_IMPORTS = ("rfc3987_syntax",)


def _import_quietly(name: str) -> None:
    """Import ``name`` (and so jsonschema) without ``_SKIPPED_IMPORTS``; the modules skipped
    stay importable afterwards for anyone who asks for them by name."""
    skipped = [m for m in _SKIPPED_IMPORTS if m not in sys.modules]
    for m in skipped:
        sys.modules[m] = None  # an ImportError for jsonschema's optional import
    try:
        __import__(name)
    except Exception:  # noqa: BLE001 - the real import later reports the problem
        pass
    finally:
        for m in skipped:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]


def _outputs(req: Request, ctx: Context, students: set[str], isolation: str, graded_now: int, reused: int,
             grader_errors: list[str], seconds: float, nbgrader: bool = True, messages: list[str] = (),
             limits_mode: str | None = None, unmatched: list[dict] = (), seed_warning: str | None = None) -> dict:
    """Every output, from the records of ``students`` (``gradebook.write_outputs``); the
    export's notebooks of nobody (``unmatched``) are listed for the TA."""
    run = {"isolation": isolation, "isolation_warning": None if isolation == "bwrap" else ISOLATION_WARNING,
           "limits": limits_mode,
           "graded_now": graded_now, "reused": reused, "grader_errors": grader_errors, "seconds": round(seconds, 2),
           "messages": list(messages) + ([seed_warning] if seed_warning else []), "unmatched": list(unmatched)}
    return gradebook.write_outputs(req.out_dir, ctx.name, ctx.tests, students=students, keep_others=req.keep_others,
                                   course=req.course if nbgrader else None, reports=req.reports, run=run,
                                   max_points=ctx.max_points)


def review_reasons(rec: dict) -> list[str]:
    """Why a record needs a TA's review ("needs review: ..." flags, without the prefix)."""
    return [f[len(REVIEW):] for f in rec.get("flags", []) if isinstance(f, str) and f.startswith(REVIEW)]


def progress_printer(stream=sys.stderr):
    """The batch's ``(done, total, record)`` callback drawn as ``grader.reports.terminal``'s
    progress bar: rate and ETA, redrawn in place on a terminal, a line per quarter otherwise."""
    from grader.reports.terminal import Progress

    bar = None

    def show(done: int, total: int, rec: dict | None) -> None:
        nonlocal bar
        if bar is None:
            bar = Progress(total, "grading", stream=stream)
        note = (f"{rec['student']}: {gradebook.fmt_points(rec['total'])}/{gradebook.fmt_points(rec['max'])}"
                if rec else "")
        bar.update(done - bar.done, note)
        if done >= total:
            bar.close()

    return show
