"""The audit as a readable table (stdout) and as JSON."""
from __future__ import annotations

import json
from pathlib import Path

from grader.files import write_atomic

ORDER = {"survivor": 0, "error": 0, "killed": 1, "equivalent": 2}


def _rank(r: dict) -> tuple:
    blind = r.get("seed_dependent") or r["partial_own"] or r["charged_elsewhere"]
    return (ORDER[r["verdict"]], 0 if blind else 1, r["line"], r["col"], r["id"])


def matrix(report: dict, full: bool = True) -> str:
    tests = [t["id"] for t in report["tests"]]
    lines = [f"== backprop audit {report['assignment']}: {len(report['mutants'])} mutants, "
             f"{len(report['seed_sets'])} seed sets, {report['seconds']} s"]
    lines.append("columns: " + "  ".join(f"{i + 1}={t}" for i, t in enumerate(tests)))
    lines.append("marks: K = loses every point under every seed set, p = loses some points under every set, "
                 "s = loses points under some sets only, . = full marks, ? = not graded (a test that needs the "
                 "notebook's long cells, for a mutant owned by another test; --full grades it); "
                 "[ ] = the test owning the unit")
    head = "".join(f"{i + 1:>4}" for i in range(len(tests)))
    by_unit: dict = {}
    for r in report["mutants"]:
        by_unit.setdefault(r["unit"], []).append(r)
    survivors = [r for r in report["mutants"] if r["verdict"] in ("survivor", "error")]
    lines.append("")
    lines.append(f"-- survivors ({len(survivors)}): not caught by their own test under every seed set")
    for r in sorted(survivors, key=_rank):
        others = r["charged_elsewhere"] + [f"{t} (0 points)" for t in r.get("flagged_by_diagnostics", [])]
        caught = f"; caught only by {', '.join(others)}" if others else ""
        lines.append(f"  {r['id']}  {r['description']}{caught}")
    if full:
        for unit, rows in by_unit.items():
            own = rows[0]["test"]
            counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in ("killed", "survivor", "equivalent")}
            lines.append("")
            lines.append(f"-- {unit} (test {own}): {counts['killed']} killed, {counts['survivor']} survivors, "
                         f"{counts['equivalent']} equivalent")
            lines.append(f"  {'':<44}{head}  verdict")
            for r in sorted(rows, key=_rank):
                marks = ""
                for t in tests:
                    m = "T" if r["how"] in ("timeout", "crashed", "memory") else r["marks"].get(t, "?")
                    marks += f"[{m}] " if t == own else f"  {m} "
                flags = []
                if r["charged_elsewhere"]:
                    flags.append("charged elsewhere")
                if r["partial_own"]:
                    flags.append("partial credit")
                if r.get("wrong_everywhere"):
                    flags.append("wrong everywhere")
                ident = r["id"].split(":", 1)[1]
                lines.append(f"  {ident:<44}{marks} {r['verdict']}{' (' + ', '.join(flags) + ')' if flags else ''}")
    lines.append("")
    lines += summary(report)
    return "\n".join(lines)


def summary(report: dict) -> list[str]:
    rows = report["mutants"]
    count = lambda v: sum(1 for r in rows if r["verdict"] == v)  # noqa: E731
    out = [f"mutants: {len(rows)}  killed {count('killed')}  survivors {count('survivor')}  "
           f"equivalent {count('equivalent')}  errors {count('error')}",
           f"charged elsewhere: {sum(1 for r in rows if r['charged_elsewhere'])}  "
           f"partial credit on own test: {sum(1 for r in rows if r['partial_own'])} "
           f"(of which wrong everywhere: {sum(1 for r in rows if r['partial_own'] and r.get('wrong_everywhere'))})"]
    for b in report.get("baselines", []):
        pts = sum(b["points"].values())
        if not b["undone_units"]:
            out.append(f"baseline {b['name']}: leaves no graded unit undone here ({pts:g} points)")
            continue
        out.append(f"baseline {b['name']}: {pts:g} points; earns points on undone tests: "
                   f"{', '.join(b['violations']) or 'none'}")
    cov = report.get("coverage")
    if cov:
        out.append(f"branch coverage: {cov['percent']}% ({cov['covered']}/{cov['branches']})")
        for u in cov["units"]:
            for g in u["gaps"]:
                out.append(f"  gap {g}")
    for name, c in report["criteria"].items():
        state = "ok" if c["ok"] else ("FAIL" if c["enforced"] else "fails (not enforced)")
        out.append(f"criterion {name}: {state} ({c['failures']} failures) - {c['what']}")
    out.append("AUDIT " + ("PASSED" if report["ok"] else "FAILED"))
    return out


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and x != x:
        return "nan"
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(_jsonable(report), indent=1, sort_keys=True) + "\n", mode=0o644)
