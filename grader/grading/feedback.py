"""Step 8b, feedback: ``feedback/<student>.md`` from a submission record.

Only what the student needs: the score table, and for each failure the check's message,
the diagnosis in plain words and a hint. Never hidden test source, seeds or expected
arrays beyond what the check's own message shows.
"""
from __future__ import annotations

from grader.checks.public import describe

from .gradebook import fmt_points


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(rec: dict) -> str:
    lines = [f"# Feedback: {rec['assignment']}, {rec['student']}", "",
             f"**Score: {fmt_points(rec['total'])} / {fmt_points(rec['max'])}**", ""]
    if rec["status"] == "error":
        lines += [f"Your notebook could not be graded: {rec.get('error', 'unreadable')}.", ""]
    if any(str(f).startswith("needs review: ") for f in rec.get("flags", [])):
        lines += ["This submission will be reviewed by a TA.", ""]  # neutral: the reasons are the TA's
    lines += ["| test | points | result |", "|---|---:|---|"]
    for t in rec["tests"]:
        r = t["result"]
        verdict = "passed" if r["passed"] else (r.get("diagnosis") or "failed")
        lines.append(f"| {t['id']} | {fmt_points(t['points'])} / {fmt_points(t['max_points'])} | {_cell(verdict)} |")
    failures = [t for t in rec["tests"] if not t["result"]["passed"]]
    if failures:
        lines += ["", "## What went wrong", ""]
    for t in failures:
        r = t["result"]
        words, hint = describe(r.get("diagnosis"))
        lines += [f"### {t['id']} ({fmt_points(t['points'])} / {fmt_points(t['max_points'])})", "",
                  r.get("message") or "failed", ""]
        if r.get("diagnosis"):
            lines.append(f"- diagnosis: `{r['diagnosis']}`" + (f": {words}" if words else ""))
        if hint:
            lines.append(f"- hint: {hint}")
        lines.append("")
    student_notes = [n for n in rec.get("notes", [])]
    broken = [c for c in rec.get("cells", []) if c["status"] not in ("ok", "neutralised")]
    if broken or student_notes:
        lines += ["## About your notebook", ""]
        for c in broken:
            lines.append(f"- cell `{c['id']}`: {c['status']}" + (f" ({_cell(c['error'])[:300]})" if c.get("error") else ""))
        for n in student_notes:
            lines.append(f"- {n}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
