"""``backprop grade`` as a pipeline of small named steps over a class of submissions:

    discover -> parse -> match cells -> run in child -> judge -> score -> persist
             -> gradebook (CSV, JSON, nbgrader db) / feedback / summary

``grade(request)`` is the Python entry point the CLI, the demo, the benchmark and the
tests use. Grading a submission never raises for anything the submission does.
"""
from __future__ import annotations

import concurrent.futures
import statistics
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from grader.files import file_stem
from grader.runner import ChildPool, available_isolation

from . import autograded, feedback, gradebook, late
from .context import Checks, Context, load_context
from .discover import Submission, discover, identity
from .execute import (AST_LOCK, REVIEW, Options, child_checks_source, mlp_data, preload_modules,
                      run_submission, runner_result)
from .notebook import NotebookError, match, parse
from .scan import scan
from .store import Store, write_text_atomic

ISOLATION_WARNING = ("WARNING: bubblewrap (bwrap) is not in use: submissions ran with rlimits ONLY. "
                     "Student code could read files the grading user can read (reference, other "
                     "submissions) and open network connections. Install bubblewrap for full isolation.")


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
    reports: bool = True                  # feedback HTML + class report (grader.reports)
    progress: object = None               # callable(done, total, record) or None

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path(self.course) / "grades" / self.assignment


# -- one submission ------------------------------------------------------------------------

def _test_entries(ctx: Context, results: list[dict]) -> list[dict]:
    entries = []
    for test, r in zip(ctx.tests, results):
        max_points = float(test["points"])
        entries.append({"id": test["id"], "grade_id": "test_" + test["id"], "target": test.get("target"),
                        "points": round(r["score"] * max_points, 4), "max_points": max_points, "result": r})
    return entries


def _record(ctx: Context, sub: Submission, isolation: str) -> dict:
    return {"student": sub.student, "assignment": ctx.name, "sha256": sub.sha256, "source": sub.source,
            "grader": ctx.fingerprint, "status": "graded", "isolation": isolation, "notes": list(sub.notes),
            "cells": [], "tests": [], "total": 0.0, "max": ctx.max_points, "flags": list(sub.flags), "seconds": 0.0,
            **identity(sub)}


def _unreadable(ctx: Context, rec: dict, why: str) -> dict:
    rec["status"], rec["error"] = "error", why
    results = [runner_result(t, "not_graded", f"not graded: {why}") for t in ctx.tests]
    rec["tests"] = _test_entries(ctx, results)
    return rec


def grade_one(pool, ctx: Context, sub: Submission, opts: Options, data: dict | None) -> dict:
    """discover'd submission -> its record (parse, match, run, judge, score)."""
    t0 = time.monotonic()
    rec = _record(ctx, sub, pool.isolation if pool else "none")
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
    out = run_submission(pool, ctx, plan, opts, data)
    rec["cells"], rec["notes"], rec["flags"] = out.cells, rec["notes"] + out.notes, rec["flags"] + out.flags
    rec["restarts"] = out.restarts
    rec["tests"] = _test_entries(ctx, out.tests)
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
    subs = discover(req.path, req.assignment)
    late.stamp(subs, req.path)  # nbgrader's timestamp.txt: the submission time in every record
    store = Store(req.out_dir)
    store.stale_temp_files()
    todo, reused = [], 0
    for sub in subs:
        rec = None if req.force else store.is_current(sub.student, sub.sha256, ctx.fingerprint)
        # same notebook, but the LMS's metadata or the discovery flags changed: grade it again
        if rec and all(rec.get(k) == v for k, v in identity(sub).items()) and set(sub.flags) <= set(rec["flags"]):
            reused += 1
        else:
            todo.append(sub)
    isolation = req.isolation or available_isolation()
    grader_errors: list[str] = []
    done = [reused]
    lock = threading.Lock()
    if req.progress:
        req.progress(reused, len(subs), None)
    if req.nbgrader and todo:
        # nbgrader's import chain takes seconds; pay it while the children work
        threading.Thread(target=_import_quietly, args=("nbgrader.api",), daemon=True).start()
    if todo:
        data = mlp_data(ctx)
        child_checks_source(ctx.checks.public_source)  # once, before the worker threads
        with ChildPool(workers=req.workers, limits=req.options.limits, isolation=isolation,
                       private=(req.course, req.path)) as pool:  # kept from the fallback's children
            isolation = pool.isolation
            preload_modules(pool, ctx)

            def work(sub: Submission):
                try:
                    rec = grade_one(pool, ctx, sub, req.options, data)
                except Exception:  # noqa: BLE001 - a grader bug: report it, keep grading others
                    with lock:
                        grader_errors.append(f"{sub.student}: {traceback.format_exc(limit=5)}")
                    return
                store.save(rec)
                with lock:
                    done[0] += 1
                    if req.progress:
                        req.progress(done[0], len(subs), rec)

            with concurrent.futures.ThreadPoolExecutor(req.workers) as ex:
                list(ex.map(work, todo))
    students = {s.student for s in subs}
    late_note = late.for_batch(req.course, ctx.name, store, students) if req.nbgrader else None
    records = sorted((r for r in store.all() if r.get("student") in students), key=lambda r: r["student"])
    summary = _outputs(req, ctx, records, isolation, len(todo) - len(grader_errors), reused, grader_errors,
                       time.monotonic() - t0)
    if req.nbgrader:  # formgrader's files, once the grades are in gradebook.db
        summary.setdefault("outputs", {})["late"] = late_note
        autograded.for_batch(req.course, ctx.name, subs, summary, req.out_dir, req.path)
    return summary


def _import_quietly(name: str) -> None:
    try:
        __import__(name)
    except Exception:  # noqa: BLE001 - the real import later reports the problem
        pass


def _outputs(req: Request, ctx: Context, records: list[dict], isolation: str, graded_now: int, reused: int,
             grader_errors: list[str], seconds: float) -> dict:
    out = req.out_dir
    gradebook.write_csv(out / "gradebook.csv", records, ctx.tests)
    gradebook.write_results(out / "results.json", records)
    for rec in records:
        write_text_atomic(out / "feedback" / f"{file_stem(rec['student'])}.md", feedback.render(rec))
    nb_note = None
    if req.nbgrader:
        db = Path(req.course).resolve() / "gradebook.db"
        if db.is_file():
            try:
                nb_note = gradebook.write_nbgrader(f"sqlite:///{db}", ctx.name, records)
            except Exception as e:  # noqa: BLE001 - the CSV/JSON are written; say so loudly
                nb_note = f"nbgrader gradebook {db}: NOT written ({type(e).__name__}: {e})"
        else:
            nb_note = f"no nbgrader gradebook at {db} (run `backprop generate`); grades not written there"
    report_note = None
    if req.reports:
        try:
            from grader.reports.cli import write_reports

            report_note = str(write_reports(out, quiet=True)["report"])
        except Exception as e:  # noqa: BLE001 - the grades are written; the report is a view of them
            report_note = f"class report NOT written ({type(e).__name__}: {e}); retry with `backprop report`"
    summary = summarise(ctx, records, isolation, graded_now, reused, grader_errors, seconds)
    summary["outputs"] = {"gradebook_csv": str(out / "gradebook.csv"), "results_json": str(out / "results.json"),
                          "feedback": str(out / "feedback"), "submissions": str(out / "submissions"),
                          "nbgrader": nb_note, "report": report_note}
    from .store import write_json_atomic

    write_json_atomic(out / "summary.json", summary)
    return summary


def summarise(ctx: Context, records: list[dict], isolation: str, graded_now: int, reused: int,
              grader_errors: list[str], seconds: float) -> dict:
    totals = [r["total"] for r in records]
    by_test = []
    for t in ctx.tests:
        entries = [e for r in records for e in r["tests"] if e["id"] == t["id"]]
        failed = [e for e in entries if not e["result"]["passed"]]
        codes: dict[str, int] = {}
        for e in failed:
            code = e["result"].get("diagnosis") or "failed"
            codes[code] = codes.get(code, 0) + 1
        by_test.append({"id": t["id"], "max_points": float(t["points"]), "failed": len(failed),
                        "mean_points": round(statistics.fmean(e["points"] for e in entries), 3) if entries else 0.0,
                        "diagnoses": dict(sorted(codes.items(), key=lambda kv: -kv[1]))})
    problems = [{"student": r["student"], "status": r["status"],
                 "why": r.get("error") or "; ".join(e["result"]["message"][:120] for e in r["tests"]
                                                    if e["result"].get("diagnosis") in
                                                    ("timeout", "crashed", "protocol_error", "output_limit"))[:300]}
                for r in records if r["status"] != "graded"]
    return {
        "assignment": ctx.name, "isolation": isolation,
        "isolation_warning": None if isolation == "bwrap" else ISOLATION_WARNING,
        "submissions": len(records), "graded_now": graded_now, "reused": reused,
        "max_points": ctx.max_points,
        "mean": round(statistics.fmean(totals), 3) if totals else None,
        "median": round(statistics.median(totals), 3) if totals else None,
        "tests": by_test, "problems": problems,
        "flagged": sorted(r["student"] for r in records
                          if any(f.startswith(("suspicious", REVIEW)) for f in r.get("flags", []))),
        # the TA's list: what the scan and the harness saw, per student (the student sees none of it)
        "review": {r["student"]: review_reasons(r) for r in records if review_reasons(r)},
        "grader_errors": grader_errors, "seconds": round(seconds, 2),
    }


def review_reasons(rec: dict) -> list[str]:
    """Why a record needs a TA's review ("needs review: ..." flags, without the prefix)."""
    return [f[len(REVIEW):] for f in rec.get("flags", []) if isinstance(f, str) and f.startswith(REVIEW)]


def format_summary(s: dict) -> str:
    lines = []
    if s["isolation_warning"]:
        lines += ["!" * 78, s["isolation_warning"], "!" * 78]
    lines.append(f"backprop grade {s['assignment']}: {s['submissions']} submission(s), {s['graded_now']} graded now, "
                 f"{s['reused']} unchanged (kept), isolation: {s['isolation']}, {s['seconds']:.1f} s")
    if s["mean"] is not None:
        lines.append(f"score: mean {s['mean']:g} / {s['max_points']:g}, median {s['median']:g}")
    from grader.reports.terminal import table

    lines.append("")
    lines.append(table([[t["id"], t["failed"], f"{t['mean_points']:.2f}", f"{t['max_points']:g}",
                         ", ".join(f"{k} {v}" for k, v in list(t["diagnoses"].items())[:3])] for t in s["tests"]],
                       ["test", "failed", "mean", "max", "most common diagnoses"], align="lrrrl"))
    if s["problems"]:
        lines += ["", f"submissions with errors ({len(s['problems'])}):"]
        for p in s["problems"]:
            lines.append(f"  {p['student']}  [{p['status']}]  {p['why'][:110]}")
    review = s.get("review") or {}
    if review:
        lines += ["", f"needs review by a TA ({len(review)}): their points are held or may be forged "
                      "(reasons in the gradebook's review column and the class report)"]
        for student, reasons in list(review.items())[:20]:
            lines.append(f"  {student}  {reasons[0][:100]}" + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""))
        if len(review) > 20:
            lines.append(f"  ... and {len(review) - 20} more")
    others = [f for f in s["flagged"] if f not in review]
    if others:
        lines += ["", f"flagged as suspicious (see flags in their records): {', '.join(others[:20])}"
                  + (" ..." if len(others) > 20 else "")]
    if s["grader_errors"]:
        lines += ["", f"GRADER ERRORS ({len(s['grader_errors'])}): these submissions were not graded; rerun to retry"]
        lines += ["  " + e.strip().splitlines()[0] + " | " + e.strip().splitlines()[-1] for e in s["grader_errors"]]
    o = s.get("outputs", {})
    if o:
        lines += ["", f"gradebook: {o['gradebook_csv']}", f"results:   {o['results_json']}",
                  f"feedback:  {o['feedback']}/<student>.md" + (" and .html" if o.get("report") else "")]
        if o.get("report"):
            lines.append(f"report:    {o['report']}")
        if o.get("nbgrader"):
            lines.append(o["nbgrader"])
    if s["isolation_warning"]:
        lines += ["!" * 78, s["isolation_warning"], "!" * 78]
    return "\n".join(lines)


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
