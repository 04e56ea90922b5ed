"""Step 8b, feedback: ``feedback/<student>.md`` from a submission record.

Only what the student needs: the score table, and for each failure the check's message,
the diagnosis in plain words and a hint. Never hidden test source, seeds or expected
arrays beyond what the check's own message shows.

Student-controlled text (the student id, messages echoing the student's exceptions, cell
ids and errors, file names in notes) is never Markdown: inline it is escaped (HTML and every
Markdown punctuation character, newlines folded), and multi-line text goes in a fenced block
whose fence is longer than any backtick run inside, so it can close nothing and forge no
heading, score line or HTML.
"""
from __future__ import annotations

import re

from grader.checks.public import describe
from grader.reports.feedback import unreadable
from grader.reports.records import (finalise, flag_text, fmt_percent, fmt_points, passed_note, score_parts,
                                    student_visible)

from .late import describe as describe_late

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")
_IDENT = re.compile(r"[A-Za-z0-9_.]{1,80}")
_MD_PUNCT = re.compile(r"([\\`*{}\[\]#!|~])")
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # inside a word it is only a letter


def _clean(text) -> str:
    """No terminal escapes or control characters (tracebacks carry ANSI colours)."""
    return _CONTROL.sub("", "" if text is None else str(text))


def md_inline(text, limit: int = 300) -> str:
    """Student text as literal inline Markdown: one line, HTML and punctuation escaped."""
    text = " ".join(_clean(text).split())
    if len(text) > limit:
        text = text[:limit] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _EDGE_UNDERSCORE.sub(r"\\_", _MD_PUNCT.sub(r"\\\1", text))
    # what would open a block where the text starts a line: a list marker, "1." or "1)"
    return re.sub(r"^(\d*)([-+.)])", r"\1\\\2", text)


def md_block(text, limit: int = 2000) -> list[str]:
    """Student text as a fenced block the text itself cannot close."""
    text = _clean(text).replace("\r", "")
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters)"
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return [fence + "text", *text.splitlines(), fence]


def _code(name) -> str:
    """A grader identifier (test id, diagnosis code) as a code span; anything else escaped."""
    name = str(name)
    return f"`{name}`" if _IDENT.fullmatch(name) else md_inline(name)


def _points(t: dict) -> str:
    return f"{fmt_points(t['points'])} / {fmt_points(t['max_points'])}" + (
        " (adjusted by a TA)" if "manual_points" in t else "") + (
        f" + {fmt_points(t['extra_credit'])} extra credit" if t.get("extra_credit") else "")


def render(rec: dict) -> str:
    rec = finalise(rec)
    who = md_inline(rec["student"]) + (f" ({md_inline(rec['name'])})" if rec.get("name") else "")
    lines = [f"# Feedback: {_code(rec['assignment'])}, {who}", "",
             f"**Score: {fmt_points(rec['total'])} / {fmt_points(rec['max'])}** ({fmt_percent(rec['percent'])})", ""]
    # extra credit or a late penalty: how the score is made; and how late, when late
    how = ([f"Points: {score_parts(rec)}."] if score_parts(rec) else []) + \
        ([f"{describe_late(rec)[:1].upper()}{describe_late(rec)[1:]}."] if describe_late(rec) else [])
    if how:
        lines += [md_inline(" ".join(how), 600), ""]
    broken = unreadable(rec)
    if broken:
        lines += ["Your notebook could not be read, so none of the tests could run. What is wrong:", "",
                  *md_block(rec.get("error") or "unreadable"), ""]
    elif rec["status"] == "error":
        lines += ["Your notebook could not be graded to the end:", "", *md_block(rec.get("error") or "error"), ""]
    elif rec["status"] in ("timeout", "crashed"):
        words, _ = describe(rec["status"])
        lines += [md_inline(words), ""]
    lines += ["| test | points | result |", "|---|---:|---|"]
    for t in rec["tests"]:
        r = t["result"]
        verdict = t["state"] if (t["state"] == "passed" or broken) else \
            f"{t['state']}: {_code(r.get('diagnosis') or 'wrong')}"
        tid = str(t["id"]) if _IDENT.fullmatch(str(t["id"])) else md_inline(t["id"])
        lines.append(f"| {tid} | {_points(t)} | {verdict} |")
    lines.append("")
    lines.append("passed: full marks; partial: some points; failed: no points.")
    failures = [] if broken else [t for t in rec["tests"] if t["state"] != "passed"]
    if failures:
        lines += ["", "## What went wrong", ""]
    for t in failures:
        r = t["result"]
        words, hint = describe(r.get("diagnosis"))
        lines += [f"### {_code(t['id'])} ({_points(t)})", "", *md_block(r.get("message") or "failed"), ""]
        if r.get("diagnosis"):
            lines.append(f"- diagnosis: {_code(r['diagnosis'])}" + (f": {words}" if words else ""))
        if hint:
            lines.append(f"- hint: {hint}")
        lines.append("")
    noted = [] if broken else [t for t in rec["tests"] if passed_note(t)]
    if noted:
        lines += ["", "## Passed, with a note", ""]
    for t in noted:
        lines += [f"### {_code(t['id'])} ({_points(t)})", "", *md_block(passed_note(t)), ""]
    notes = list(rec.get("notes") or []) + [flag_text(f) for f in rec.get("flags") or [] if student_visible(f)]
    if any(not student_visible(f) for f in rec.get("flags") or []):
        notes.append("This submission was flagged and will be reviewed by a TA.")
    cells = [c for c in rec.get("cells") or [] if c.get("status") not in ("ok", "neutralised")]
    if cells or notes:
        lines += ["## About your notebook", ""]
        for c in cells:
            lines.append(f"- cell {md_inline(c.get('id'))}: {md_inline(c.get('status'))}")
            if c.get("error"):
                lines += ["", *["  " + x for x in md_block(c["error"], 600)], ""]
        for n in notes:
            lines.append(f"- {md_inline(n, 500)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
