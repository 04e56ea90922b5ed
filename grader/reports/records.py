"""Reading the grading output folder (``course/grades/<A>/``); never re-runs anything.

A record is the per-submission JSON documented in docs/ARCHITECTURE.md ("Grading output").
This module is the one source of truth every output is built from (terminal summary,
gradebook.csv, results.json, summary.json, pass_matrix.csv, gradebook.db, Markdown and HTML
feedback, class report): ``points`` is the one rounding rule, ``state`` the one meaning of
passed / partial / failed, ``attention`` the one list of reasons a TA should look, and
``finalise`` applies all three (and the TA's manual grades) to a record.
"""
from __future__ import annotations

import copy
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from .diagnoses import RUNNER_CODES

# -- the one rounding rule and the one meaning of a test's outcome --------------------------

def points(x) -> float:
    """Points as every output shows them: 2 decimals, halves away from zero (22.875 -> 22.88).

    Rounded from the shortest decimal form of the float, so 22.875 is 22.88 everywhere
    (``round(22.875, 2)`` would give 22.87 on some values and 22.88 on others)."""
    if x is None:
        return 0.0
    return float(Decimal(repr(float(x))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) + 0.0


def fmt_points(x) -> str:
    """``points(x)`` as text: ``26``, ``22.88``, ``0.5``; ``—`` for no value."""
    if x is None:
        return "—"
    return f"{points(x):.2f}".rstrip("0").rstrip(".")


def percent(total, mx) -> float:
    """Share of the points, one decimal (a percentage beside points, never instead of them)."""
    return float(Decimal(repr(100 * points(total) / points(mx))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)) \
        if mx else 0.0


def fmt_percent(x) -> str:
    return f"{float(x):.1f}%"


def state(pts, mx) -> str:
    """'passed' (full marks) | 'partial' (some points) | 'failed' (no points)."""
    pts, mx = points(pts), points(mx)
    if mx > 0 and pts >= mx:
        return "passed"
    return "partial" if pts > 0 else "failed"


def test_state(test: dict) -> str:
    """``state`` of one entry of a record's ``tests`` (from its points, after any manual grade)."""
    if test.get("state") in ("passed", "partial", "failed"):
        return test["state"]
    mx = test.get("max_points")
    pts = test.get("points")
    if pts is None and mx:
        pts = float((test.get("result") or {}).get("score") or 0) * float(mx)
    if not mx:  # a test worth nothing: its verdict decides
        return "passed" if (test.get("result") or {}).get("passed") else "failed"
    return state(pts, mx)


def passed_note(test: dict) -> str:
    """What a passed test says beyond "all N cases passed" (a failure it charged to another
    test's unit, say), or ""."""
    if test_state(test) != "passed":
        return ""
    return str((test.get("result") or {}).get("message") or "").partition(" cases passed; ")[2]


# cells the grader had to stop: a TA looks (a cell that raised is the student's own bug, in the feedback)
CELL_PROBLEMS = ("timeout", "crashed")


def flag_text(flag) -> str:
    """A flag as one line of text: flags are strings, or dicts from newer producers
    (``{"reason": ...}``, ``{"kind": ..., "message": ...}``): both are read the same way."""
    if isinstance(flag, dict):
        parts = [str(flag[k]) for k in ("kind", "reason", "message", "detail") if flag.get(k)]
        return ": ".join(parts) if parts else json.dumps(flag, sort_keys=True)
    return str(flag)


def is_hostile(flag) -> bool:
    """A flag for the TA only: an attempt on the grader (ARCHITECTURE.md writes "hostile: ...",
    ``backprop grade``'s static scan writes "suspicious: ...", the scan and the private harness
    "needs review: ...")."""
    return flag_text(flag).lower().startswith(("hostile", "suspicious", "needs review"))


# Flags a student may read in their own feedback (about their notebook, not about the grader):
# everything else is for the TA, and the student sees only that a TA will look.
STUDENT_VISIBLE_FLAGS = ("output truncated",)


def student_visible(flag) -> bool:
    return flag_text(flag).lower().startswith(STUDENT_VISIBLE_FLAGS)


def stale_manual_flag(test_id: str, manual: dict) -> str:
    return (f"stale manual grade: {test_id}: auto score changed from {fmt_points(manual.get('auto_at_adjustment'))} "
            f"to {fmt_points(manual.get('auto_now'))} since the TA's adjustment "
            f"(the TA's {fmt_points(manual.get('score'))} is kept; review it in formgrader)")


def finalise(record: dict) -> dict:
    """The record as every output shows it (a copy): points rounded by ``points``, the TA's
    manual grades and extra credit (``record["manual"]``, read from gradebook.db) in place of
    the automatic scores, each test's ``state``, stale manual grades flagged, ``attention``
    (why a TA should look), and the score as nbgrader's export computes it:

    ``raw`` = the tests' points + ``extra_credit`` (nbgrader's ``SubmittedNotebook.score``),
    ``late_penalty`` (points, from the course's late policy, ``grader.grading.late``),
    ``total`` = max(0, raw - late_penalty): the grade, the one every output and the LMS export
    report, with ``max`` and ``percent`` (of ``total``). Idempotent."""
    r = copy.deepcopy(record)
    manual = r.get("manual") or {}
    auto_total = extra_total = 0.0
    flags = [f for f in r.get("flags") or [] if not flag_text(f).startswith("stale manual grade:")]
    for t in r.get("tests") or []:
        auto = points(t.get("auto_points", t.get("points")))
        t["auto_points"] = auto
        auto_total += auto
        m = manual.get(str(t.get("id")))
        m = m if isinstance(m, dict) else {}
        if m.get("score") is not None:
            t["manual_points"] = points(m["score"])
            t["points"] = t["manual_points"]
            # stale as last synced, or since (a regrade without the database still sees it)
            if m.get("stale") or (m.get("auto_at_adjustment") is not None and points(m["auto_at_adjustment"]) != auto):
                flags.append(stale_manual_flag(str(t.get("id")), {**m, "auto_now": auto}))
        else:
            t.pop("manual_points", None)
            t["points"] = auto
        extra = points(m.get("extra_credit"))
        if extra:
            t["extra_credit"] = extra
            extra_total += extra
        else:
            t.pop("extra_credit", None)
        if t.get("max_points") is not None:
            t["max_points"] = points(t["max_points"])
        t.pop("state", None)
        t["state"] = test_state(t)
    tests = r.get("tests") or []
    r["flags"] = flags
    r["auto_total"] = points(auto_total)
    r["extra_credit"] = points(extra_total)
    if tests:
        r["raw"] = points(sum(t["points"] for t in tests) + extra_total)
    else:  # no tests (an old or foreign record): its own raw score, else its total
        r["raw"] = points(r["raw"] if r.get("raw") is not None else r.get("total"))
    r["late_penalty"] = points(r.get("late_penalty"))
    r["total"] = points(max(0.0, r["raw"] - r["late_penalty"]))
    mx = r.get("max")
    r["max"] = points(mx if mx is not None else sum(float(t.get("max_points") or 0) for t in tests))
    r["percent"] = percent(r["total"], r["max"])
    r["attention"] = attention(r)
    return r


def score_parts(record: dict) -> str | None:
    """How a finalised record's ``total`` is made when it is not just the tests' points:
    ``24 + 1 extra credit - 2.5 late penalty = 22.5`` (None otherwise)."""
    extra, penalty = record.get("extra_credit") or 0.0, record.get("late_penalty") or 0.0
    if not extra and not penalty:
        return None
    text = fmt_points(points(record["raw"] - extra)) + " (tests)"
    text += f" + {fmt_points(extra)} extra credit" if extra else ""
    text += f" - {fmt_points(penalty)} late penalty" if penalty else ""
    return text + f" = {fmt_points(record['total'])}"


def attention(record: dict) -> list[str]:
    """Why a TA should look at this submission, one reason per line (empty: nothing unusual).

    Not graded to the end (status and its error), a runner outcome in any test, a cell the
    grader had to stop (timed out, crashed), and every
    flag whoever added it (the static scan, forging checks, the LMS reader, a stale manual
    grade): flags are read generically, never by a known list."""
    why = []
    status = record.get("status", "graded")
    if status != "graded":
        why.append(f"{status}: {record['error']}" if record.get("error") else str(status))
    codes = {(t.get("result") or {}).get("diagnosis") for t in record.get("tests") or []}
    why += [f"{c} in a test" for c in sorted(c for c in codes & RUNNER_CODES if c not in (status, "not_graded"))]
    why += [f"cell {c.get('id')}: {c['status']}" + (f" ({str(c['error'])[:120]})" if c.get("error") else "")
            for c in record.get("cells") or [] if c.get("status") in CELL_PROBLEMS]
    why += [flag_text(f) for f in record.get("flags") or []]
    return list(dict.fromkeys(why))


def needs_attention(record: dict) -> list[str]:
    """Short tags of ``attention`` for a table column: the status, hostile / flagged, runner codes."""
    why = []
    status = record.get("status", "graded")
    if status != "graded":
        why.append(status)
    flags = record.get("flags") or []
    if any(is_hostile(f) for f in flags):
        why.append("hostile")
    if any(flag_text(f).startswith("stale manual grade:") for f in flags):
        why.append("stale manual grade")
    if any(not is_hostile(f) and not flag_text(f).startswith("stale manual grade:") for f in flags):
        why.append("flagged")
    codes = {((t.get("result") or {}).get("diagnosis")) for t in record.get("tests") or []}
    why += sorted(c for c in codes & RUNNER_CODES if c != status and c != "not_graded")
    why += sorted({c["status"] for c in record.get("cells") or [] if c.get("status") in CELL_PROBLEMS} - set(why))
    return why


def load_records(grades_dir, skipped: list | None = None) -> list[dict]:
    """All submission records, sorted by student; unreadable files are named in ``skipped``.

    ``submissions/*.json`` is preferred (written as each submission is graded, so it is
    complete even while grading runs); ``results.json`` is the fallback.
    """
    grades_dir = Path(grades_dir)
    records = []
    sub = grades_dir / "submissions"
    if sub.is_dir():
        for path in sorted(sub.glob("*.json")):
            if path.name.startswith("."):
                continue  # a temp file of an atomic write
            try:
                records.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:  # torn or foreign file: report, keep the rest
                if skipped is not None:
                    skipped.append(f"{path.name}: {e}")
    if not records and (grades_dir / "results.json").is_file():
        data = json.loads((grades_dir / "results.json").read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = data.get("records") or data.get("submissions") or data.get("results") or []
        records = list(data)
    records = [r for r in records if isinstance(r, dict)]
    return sorted(records, key=lambda r: str(r.get("student", "")))


def load_unmatched(grades_dir) -> list[dict]:
    """The last batch's notebooks of nobody (``summary.json``'s ``unmatched``): kept for the TA
    by ``backprop report``, which does not read the submissions again."""
    try:
        data = json.loads((Path(grades_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = data.get("unmatched") if isinstance(data, dict) else None
    return [u for u in found or [] if isinstance(u, dict) and "file" in u and "reason" in u]


def test_order(records: list[dict]) -> list[str]:
    """Test ids in suite order (first appearance across records)."""
    order: dict[str, None] = {}
    for r in records:
        for t in r.get("tests") or []:
            order.setdefault(str(t.get("id")), None)
    return list(order)


def max_points(records: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in records:
        for t in r.get("tests") or []:
            if t.get("max_points") is not None:
                out.setdefault(str(t["id"]), points(t["max_points"]))
    return out


def csv_cell(text) -> str:
    """Student-controlled text for a spreadsheet: never read as a formula."""
    text = "" if text is None else str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def safe_name(student: str) -> str:
    """A file name for a student's feedback: ``grader.files.file_stem`` (injective, so
    ``x+y`` and ``x_y`` never share a page)."""
    from grader.files import file_stem

    return file_stem(str(student))
