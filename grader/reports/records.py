"""Reading the grading output folder (``course/grades/<A>/``); never re-runs anything.

A record is the per-submission JSON documented in docs/ARCHITECTURE.md ("Grading output").
Helpers here classify a test result the same way for the feedback page and the class report.
"""
from __future__ import annotations

import json
from pathlib import Path

from .diagnoses import RUNNER_CODES


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


def test_state(test: dict) -> str:
    """'passed' | 'partial' | 'failed' for one entry of a record's ``tests``."""
    result = test.get("result") or {}
    if result.get("passed"):
        return "passed"
    score = result.get("score")
    if score is None and test.get("max_points"):
        score = (test.get("points") or 0) / test["max_points"]
    return "partial" if score and score > 0 else "failed"


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
                out.setdefault(str(t["id"]), float(t["max_points"]))
    return out


def is_hostile(flag: str) -> bool:
    """A flag for the TA only: an attempt on the grader (ARCHITECTURE.md writes "hostile: ...",
    ``backprop grade``'s static scan writes "suspicious: ...", the scan and the private harness
    "needs review: ...")."""
    return str(flag).lower().startswith(("hostile", "suspicious", "needs review"))


def needs_attention(record: dict) -> list[str]:
    """Why a TA should look at this submission (empty when nothing is unusual)."""
    why = []
    status = record.get("status", "graded")
    if status != "graded":
        why.append(status)
    if any(is_hostile(f) for f in record.get("flags") or []):
        why.append("hostile")
    elif record.get("flags"):
        why.append("flagged")
    codes = {((t.get("result") or {}).get("diagnosis")) for t in record.get("tests") or []}
    why += sorted(c for c in codes & RUNNER_CODES if c != status)
    return why


def safe_name(student: str) -> str:
    """A file name for a student's feedback: ``grader.files.file_stem`` (injective, so
    ``x+y`` and ``x_y`` never share a page)."""
    from grader.files import file_stem

    return file_stem(str(student))
