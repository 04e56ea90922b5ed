"""nbgrader's ``autograded/`` tree from our records, for formgrader and ``nbgrader generate_feedback``.

``autograded/<student>/<A>/<A>.ipynb`` is what ``nbgrader autograde`` would leave, built the
way its sanitising steps build it, without running anything:

- ``ClearOutput``: no outputs or execution counts from the student's run;
- ``DeduplicateIds``: a second cell claiming a ``grade_id`` loses its nbgrader metadata;
- ``OverwriteKernelspec`` / ``OverwriteCells``: the kernelspec and every locked cell (given
  code, test cells) come from the course, with the course's nbgrader metadata (``grade_id``,
  ``points``, ``checksum``) on every nbgrader cell; a cell the student deleted is put back.
  Unlike autograde, the course's copy is the *released* cell: the hidden suite never leaves
  the grader, so no hidden test appears in a file a student may be shown;
- each graded test cell's outputs are our verdict for it: a stream when it earned full
  marks, an error (the diagnosis and the student-facing message) otherwise.

The scores themselves are ``Grade.auto_score`` rows (``gradebook.sync_nbgrader``); here the
``Comment`` rows of solution cells get nbgrader's "No response." when the cell is unchanged
(``SaveAutoGrades``), and ``timestamp.txt`` is carried over from the submission (or the LMS's
upload time).
"""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

from grader.files import write_atomic

from .late import timestamp_file


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell.get("source"), list) else cell.get("source") or ""


def _meta(cell: dict) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def release_notebook(course: Path, assignment: str) -> dict:
    return json.loads((Path(course) / "release" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8"))


def outputs_for(test: dict) -> list[dict]:
    """A test cell's outputs: our verdict, in the student-facing words of the feedback."""
    r = test.get("result") or {}
    from .gradebook import fmt_points

    score = f"{fmt_points(float(test.get('points') or 0.0))} / {fmt_points(float(test.get('max_points') or 0.0))} points"
    message = str(r.get("message") or "").rstrip()
    if r.get("passed"):
        return [{"output_type": "stream", "name": "stdout",
                 "text": f"{test['id']}: passed, {score}\n" + (message + "\n" if message else "")}]
    lines = [f"{test['id']}: {score}"] + (message.splitlines() or ["failed"])
    return [{"output_type": "error", "ename": str(r.get("diagnosis") or "failed"),
             "evalue": lines[1] if len(lines) > 1 else lines[0], "traceback": lines}]


def build(submitted: dict | None, release: dict, record: dict) -> dict:
    """The autograded notebook for ``record``: the submitted notebook (None when unreadable:
    the released one, so the TA still sees every test) sanitised as nbgrader does."""
    import nbformat

    course_cells = {m["grade_id"]: c for c in release["cells"] if (m := _meta(c)).get("grade_id")}
    base = submitted if submitted is not None else release
    cells, seen = [], set()
    for cell in copy.deepcopy(base.get("cells") or []):
        if cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        gid = _meta(cell).get("grade_id")
        if gid is not None and (gid in seen or gid not in course_cells):
            cell.get("metadata", {}).pop("nbgrader", None)  # a duplicate or a forged nbgrader cell
            gid = None
        if gid is not None:
            seen.add(gid)
            ref = course_cells[gid]
            cell["cell_type"] = ref["cell_type"]
            cell.setdefault("metadata", {})["nbgrader"] = copy.deepcopy(_meta(ref))
            if _meta(ref).get("locked") or not _meta(ref).get("solution"):
                cell["source"] = _src(ref)
        cells.append(cell)
    # cells the student deleted go back after their predecessor in the course's order
    order = [c for c in release["cells"] if _meta(c).get("grade_id")]
    for i, ref in enumerate(order):
        gid = _meta(ref)["grade_id"]
        if gid in seen:
            continue
        prev = {_meta(r)["grade_id"] for r in order[:i]}
        at = max((k + 1 for k, c in enumerate(cells) if _meta(c).get("grade_id") in prev), default=0)
        cells.insert(at, copy.deepcopy(ref))
        seen.add(gid)
    tests = {t.get("grade_id"): t for t in record.get("tests") or []}
    ids = set()
    for k, cell in enumerate(cells):
        cid = str(cell.get("id") or "")
        if not cid or cid in ids or len(cid) > 64:
            cid = f"cell-{k}"
        cell["id"] = cid
        ids.add(cid)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            t = tests.get(_meta(cell).get("grade_id"))
            if t is not None:
                cell["outputs"] = outputs_for(t)
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        cell["source"] = _src(cell)
    metadata = dict((base.get("metadata") if isinstance(base.get("metadata"), dict) else None) or {})
    for key in ("kernelspec", "language_info"):
        if key in release.get("metadata", {}):
            metadata[key] = copy.deepcopy(release["metadata"][key])
    nb = nbformat.from_dict({"nbformat": 4, "nbformat_minor": max(5, int(release.get("nbformat_minor", 5))),
                             "metadata": metadata, "cells": cells})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nbformat.validate(nb)
    return nb


def _parse(data: bytes | None) -> dict | None:
    if not data:
        return None
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return nb if isinstance(nb, dict) and isinstance(nb.get("cells"), list) else None


def _safe_dir(student: str) -> bool:
    return bool(student) and "/" not in student and "\\" not in student and student not in (".", "..") \
        and "\0" not in student


def write(course: Path, assignment: str, records: list[dict], data: dict[str, bytes | None],
          db_url: str | None = None, notebook: str | None = None, root: Path | None = None) -> str:
    """``autograded/<student>/<A>/<A>.ipynb`` and ``timestamp.txt`` for each record (``data``:
    the submitted bytes by student); solution cells' "No response." comments into the gradebook.
    Returns a note for the summary."""
    import nbformat

    course = Path(course)
    notebook = notebook or assignment
    release = release_notebook(course, assignment)
    written, skipped, built = 0, [], {}
    for rec in records:
        student = str(rec.get("student") or "")
        if not _safe_dir(student):
            skipped.append(student)
            continue
        base = _parse(data.get(student))
        try:
            nb = build(base, release, rec)
        except Exception:  # noqa: BLE001 - an invalid student notebook: show the course's cells instead
            nb = build(None, release, rec)
        folder = course / "autograded" / student / assignment
        write_atomic(folder / f"{notebook}.ipynb", nbformat.writes(nb) + "\n")
        stamp = timestamp_file(rec, root)
        text = stamp.read_text(encoding="utf-8") if stamp else (rec.get("submitted_at") or "")
        if text.strip():
            write_atomic(folder / "timestamp.txt", text if text.endswith("\n") else text + "\n")
        else:
            (folder / "timestamp.txt").unlink(missing_ok=True)
        built[student] = nb
        written += 1
    if db_url:
        _comments(db_url, assignment, notebook, built)
    note = f"nbgrader autograded/: {written} notebook(s) for formgrader and `nbgrader generate_feedback`"
    if skipped:
        note += f"; skipped ids that are not folder names: {', '.join(map(repr, skipped[:5]))}"
    return note


def _comments(db_url: str, assignment: str, notebook: str, built: dict) -> None:
    """``SaveAutoGrades``'s comments: "No response." on a solution cell left as released."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.utils import compute_checksum, is_solution, is_task

    from grader.authoring.course import scripts_on_path

    with scripts_on_path(), warnings.catch_warnings(), Gradebook(db_url) as gb:
        warnings.simplefilter("ignore")
        for student, nb in built.items():
            for cell in nb.cells:
                if not (is_solution(cell) or is_task(cell)):
                    continue
                try:
                    comment = gb.find_comment(cell.metadata.nbgrader["grade_id"], notebook, assignment, student)
                except MissingEntry:
                    continue
                unchanged = cell.metadata.nbgrader.get("checksum") == compute_checksum(cell)
                comment.auto_comment = "No response." if unchanged and not is_task(cell) else None
        gb.db.commit()


def for_batch(course: Path, assignment: str, subs: list, summary: dict, out: Path, root: Path) -> None:
    """``backprop grade``'s step after its outputs (the grades are in gradebook.db): the
    autograded tree for this class, and its note in the summary (and summary.json)."""
    from .store import Store, write_json_atomic

    db = Path(course).resolve() / "gradebook.db"
    if not db.is_file():
        return
    data = {s.student: s.data for s in subs}
    records = [r for r in Store(out).all() if r.get("student") in data]
    try:
        note = write(course, assignment, records, data, f"sqlite:///{db}", root=root)
    except Exception as e:  # noqa: BLE001 - the grades are written; formgrader's files are not
        note = f"nbgrader autograded/ NOT written ({type(e).__name__}: {e})"
    summary.setdefault("outputs", {})["autograded"] = note
    write_json_atomic(Path(out) / "summary.json", summary)
