"""The audit of one assignment: mutants, baselines and coverage, judged by the criteria.

Verdicts per mutant (scores are per test and per seed set, 0..1):

- ``killed``: its own test (the test owning the mutated unit) scores < 1 under every seed set
  (a mutant that times out or crashes the notebook earns nothing: killed);
- ``equivalent``: no test loses a point under any seed set, and it equals the reference on
  every sample of the unit's domain (``domains``), the evidence is listed;
- ``survivor``: anything else (its own test lets it through under some seed set).

Flags: ``charged_elsewhere`` (another test that carries points loses some for it: the bug is
charged more than once), ``flagged_by_diagnostics`` (a 0-point diagnostic test fails it: no
points are charged there, so it is not a second charge), ``partial_own`` (its own test still gives part of the points),
``wrong_everywhere`` (it differs from the reference on every domain sample, so it should
earn 0 on its test and lose nothing elsewhere).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grader.authoring.assignment import ASSIGNMENTS

from . import baselines as B
from . import coverage as C
from .mutants import mutants as derive_mutants
from .run import Pool, context_key, forget, loaded, prepared, seed_set
from .units import load as load_units

CRITERIA = {
    "reference_full_marks": "the reference earns every point under every seed set",
    "mutants_killed_on_own_test": "every non-equivalent mutant loses points on the test of the unit it "
                                  "mutates, under every seed set",
    "lazy_baselines_zero": "each lazy baseline earns 0 on every test whose unit it leaves undone",
    "branch_coverage": "every branch and kink of every graded unit is exercised by the hidden specs",
    "charged_once": "a mutant wrong on the whole domain earns 0 on its test and loses no points elsewhere",
}
ENFORCED_BY_DEFAULT = ("reference_full_marks", "mutants_killed_on_own_test", "lazy_baselines_zero",
                       "branch_coverage")


@dataclass
class Options:
    n_sets: int = 3
    workers: int = 2
    only: str | None = None
    timeout: float = 60.0
    enforce_charged_once: bool = True
    coverage: bool = True
    baselines: bool = True
    all_sets_elsewhere: bool = False  # grade other tests under every seed set too (slower)
    full: bool = False                # grade the tests that need the long (training) cells for every mutant


def _cell(scores: list) -> str:
    """One mark per (mutant, test): K lost points under every set (0 each), p lost some under
    every set, s lost points under some sets only, . full marks."""
    scores = [s for s in scores if s is not None]  # None: not graded under that set
    if not scores:
        return "?"
    if all(s >= 1 for s in scores):
        return "."
    if all(s <= 0 for s in scores):
        return "K"
    if all(s < 1 for s in scores):
        return "p"
    return "s"


def _seeds(table: dict) -> list:
    h = table.get("hidden") or {}
    return list(h.get("seeds") or [h.get("seed", 0)])


def verdict(m: dict, own: str, points: dict | None = None) -> dict:
    """The mutant's verdict and flags (``points``: test id -> points; a test with 0 points
    charges nothing, so losing its score is a diagnosis, not a second charge)."""
    status = m["status"]
    tests = m.get("tests", {})
    if status in ("timeout", "crashed", "memory"):
        return {"verdict": "killed", "how": status, "charged_elsewhere": [], "flagged_by_diagnostics": [],
                "partial_own": False, "wrong_everywhere": None}
    if status != "ok":
        return {"verdict": "error", "how": status, "charged_elsewhere": [], "flagged_by_diagnostics": [],
                "partial_own": False, "wrong_everywhere": None}
    own_scores = tests[own]["scores"]
    killed_own = all(s < 1 for s in own_scores)
    killed_any = any(s is not None and s < 1 for r in tests.values() for s in r["scores"])
    dom = m.get("domain") or {}
    n, differ = dom.get("samples", 0), dom.get("differ", 0)
    if killed_own:
        v = "killed"
    elif not killed_any and n > 0 and differ == 0:
        v = "equivalent"
    else:
        v = "survivor"
    lost = sorted(t for t, r in tests.items() if t != own and any(s is not None and s < 1 for s in r["scores"]))
    scored = lambda t: points is None or points.get(t, 0) > 0  # noqa: E731
    return {"verdict": v, "how": "scores",
            "charged_elsewhere": [t for t in lost if scored(t)],
            "flagged_by_diagnostics": [t for t in lost if not scored(t)],
            "partial_own": any(0 < s < 1 for s in own_scores),
            "seed_dependent": (not killed_own) and any(s < 1 for s in own_scores),
            "wrong_everywhere": (n > 0 and differ == n) if n else None}


def _guarded(fn, failure: list):
    def run():
        try:
            fn()
        except BaseException as e:  # raised again in the auditing thread
            failure.append(e)
    return run


def audit(name: str, opts: Options | None = None, root: Path = ASSIGNMENTS, pool: Pool | None = None,
          progress=None) -> dict:
    opts = opts or Options()
    t0 = time.monotonic()
    a, units = load_units(name, root)
    unit_by_name = {u.name: u for u in units}
    muts = derive_mutants(units, opts.only)
    key = context_key(name, root, opts.n_sets)
    own_pool = pool is None
    if own_pool:
        pool = Pool(opts.workers, opts.timeout).__enter__()
    try:
        # The reference is built and graded here, once (trusted code), in a thread, while the
        # workers (forked before it starts: never fork a process that runs a thread) measure
        # coverage and grade the lazy baselines, which need only the specs. Workers forked
        # after it inherit its grades, records and reach. Its time sets the mutants' deadline,
        # so a loaded machine does not turn a slow mutant into a "killed by timeout" one.
        loaded(key)
        pool.refresh()
        pool.start()
        failure: list = []
        primer = threading.Thread(target=_guarded(lambda: prepared(key, units), failure), daemon=True)
        primer.start()
        # the baselines run every test with the notebook's long cells: a timeout there fails the
        # audit, so on a loaded machine they get more time than a mutant (for which a timeout
        # only means killed); so does the coverage run
        early = [{"id": "coverage", "units": units, "only": opts.only, "timeout_scale": 5}] if opts.coverage else []
        if opts.baselines:
            early += [{"id": f"baseline:{b}", "cells": B.cells(a, b), "timeout_scale": 5} for b in B.BASELINES]
        pool.timeout = opts.timeout
        results = {r["id"]: r for r in pool.map(key, early, forking=False)}
        primer.join()
        if failure:
            raise failure[0]
        ctx = prepared(key, units)
        reference = ctx.reference_result
        pool.refresh()
        results.update({r["id"]: r for r in pool.map(key, [t for t in early if t["id"] not in results])})
        pool.timeout = max(opts.timeout, 20 * reference["seconds"])
        tasks = [{"id": m.id, "overrides": {m.top: m.source}, "unit": unit_by_name[m.unit],
                  "units": units, "all_sets_elsewhere": opts.all_sets_elsewhere, "full": opts.full} for m in muts]
        results.update({r["id"]: r for r in pool.map(key, tasks, progress)})
    finally:
        if own_pool:
            pool.__exit__(None, None, None)
        else:
            pool.refresh()  # the next assignment's workers are forked from its own context
        forget(key)
    report = {
        "assignment": name,
        "seed_sets": [{t["id"]: _seeds(seed_set(t, k)) for t in ctx.tests} for k in range(opts.n_sets)],
        "tests": [{"id": t.id, "points": t.points, "check": t.check, "target": t.target} for t in a.tests],
        "units": [{"name": u.name, "test": u.test, "check": u.check, "path": u.path, "line": u.line,
                   "mutants": sum(1 for m in muts if m.unit == u.name)} for u in units
                  if not opts.only or opts.only in (u.name, u.top, u.test)],
        "reference": {k: v for k, v in reference.items() if k != "seconds"},
    }
    rows = []
    for m in muts:
        r = results[m.id]
        u = unit_by_name[m.unit]
        row = {"id": m.id, "unit": m.unit, "test": u.test, "operator": m.operator, "line": m.line, "col": m.col,
               "path": u.path, "description": m.description, "status": r["status"], "errors": r.get("errors", []),
               "scores": {t: v["scores"] for t, v in r.get("tests", {}).items()},
               "diagnoses": {t: v["diagnoses"] for t, v in r.get("tests", {}).items()},
               "domain": r.get("domain")}
        row.update(verdict(r, u.test, {t.id: t.points for t in a.tests}))
        row["marks"] = {t: _cell(s) for t, s in row["scores"].items()}
        rows.append(row)
    report["mutants"] = rows
    if opts.baselines:
        report["baselines"] = []
        for b in B.BASELINES:
            r = results[f"baseline:{b}"]
            undone = B.undone(b, units)
            undone_tests = sorted({u.test for u in undone})
            got = {t: v["scores"] for t, v in r.get("tests", {}).items()}
            report["baselines"].append({
                "name": b, "status": r["status"], "undone_units": [u.name for u in undone],
                "scores": got,
                "points": {t.id: round(t.points * min(got.get(t.id, [0])), 4) for t in a.tests},
                "violations": [t for t in undone_tests if any(s > 0 for s in got.get(t, [1]))]})
    if opts.coverage:
        got = results["coverage"]
        # a coverage run that failed in its worker (timeout, memory) is measured here instead
        report["coverage"] = got["coverage"] if got["status"] == "ok" else C.measure(ctx, units, opts.only)
    report["criteria"] = criteria(report, opts)
    report["ok"] = all(c["ok"] for c in report["criteria"].values() if c["enforced"])
    report["seconds"] = round(time.monotonic() - t0, 2)
    return report


def criteria(report: dict, opts: Options) -> dict:
    rows = report["mutants"]
    ref = report["reference"]
    out = {}

    def put(name, failures, detail):
        enforced = name in ENFORCED_BY_DEFAULT or (name == "charged_once" and opts.enforce_charged_once)
        out[name] = {"ok": not failures, "failures": len(failures), "enforced": enforced,
                     "what": CRITERIA[name], "detail": failures[:50] if detail else failures}

    bad_ref = [t for t, v in ref.get("tests", {}).items() if any(s < 1 for s in v["scores"])]
    if ref["status"] != "ok":
        bad_ref = [ref["status"]] + ref.get("errors", [])
    put("reference_full_marks", bad_ref + [f"cell error: {e}" for e in ref.get("errors", [])], False)
    put("mutants_killed_on_own_test",
        [r["id"] for r in rows if r["verdict"] in ("survivor", "error")], True)
    if "baselines" in report:
        put("lazy_baselines_zero", [f"{b['name']}: {t}" for b in report["baselines"] for t in b["violations"]], False)
    if "coverage" in report:
        put("branch_coverage", [g for u in report["coverage"]["units"] for g in u["gaps"]], True)
    put("charged_once", [r["id"] for r in rows if r.get("wrong_everywhere")
                         and (any(s > 0 for s in r["scores"].get(r["test"], [])) or r["charged_elsewhere"])], True)
    return out
