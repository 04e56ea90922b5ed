"""The audit as a gate: audit assignments, say in a few lines why any fails.

``backprop generate`` calls ``gate`` before writing a course and refuses when it fails; the
test of every assignment in ``tests/audit`` calls ``audit_one``.
"""
from __future__ import annotations

import os
from pathlib import Path

from grader.authoring.assignment import ASSIGNMENTS

from . import leaks
from .core import Options, audit
from .run import Pool, ReferenceFails


def audit_one(name: str, opts: Options | None = None, root: Path = ASSIGNMENTS, pool: Pool | None = None,
              order=None, progress=None) -> dict:
    """The full report of one assignment, leak check included (as ``backprop audit`` prints it)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    report = audit(name, opts or Options(), root=root, pool=pool, progress=progress)
    report["leaks"] = leaks.check(order=order, only=name, root=root)
    report["criteria"]["no_leaks"] = leaks.criterion(report["leaks"])
    report["ok"] = report["ok"] and report["criteria"]["no_leaks"]["ok"]
    return report


def failures(report: dict, limit: int = 20) -> list[str]:
    """Why the audit of one assignment fails: survivors, leaks and every other failing criterion."""
    out = []
    rows = {r["id"]: r for r in report["mutants"]}
    for name, c in report["criteria"].items():
        if c["ok"] or not c["enforced"]:
            continue
        out.append(f"  {name}: {c['failures']} failure(s): {c['what']}")
        for d in c["detail"][:limit]:
            r = rows.get(d)
            out.append(f"    {d}" + (f"  ({r['description']})" if r else ""))
        if c["failures"] > limit:
            out.append(f"    ... and {c['failures'] - limit} more")
    return out


def gate(names: list[str], root: Path = ASSIGNMENTS, workers: int = 2, log=print, only: str | None = None) -> bool:
    """Audit each assignment; log one line per assignment and the reasons of any failure
    (``only``: one unit, class or test, as ``backprop audit --only``)."""
    ok = True
    with Pool(workers, Options().timeout) as pool:
        for name in names:
            try:
                report = audit_one(name, Options(workers=workers, only=only), root=root, pool=pool)
            except ReferenceFails as e:
                log(f"audit {name}: FAILED: {e}")
                ok = False
                continue
            rows = report["mutants"]
            killed = sum(1 for r in rows if r["verdict"] == "killed")
            equivalent = sum(1 for r in rows if r["verdict"] == "equivalent")
            state = "passed" if report["ok"] else "FAILED"
            log(f"audit {name}: {state} ({len(rows)} mutants: {killed} killed, {equivalent} equivalent; "
                f"{report['seconds']} s)")
            if not report["ok"]:
                for line in failures(report):
                    log(line)
            ok = ok and report["ok"]
    return ok
