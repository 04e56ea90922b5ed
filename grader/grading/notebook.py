"""Steps 2-3, parse and match: submitted notebook bytes -> the code cells the child runs.

Roles come from the trusted source cells (the assignment's template / source notebook),
never from the submission's metadata: a submitted cell is matched to a source cell by
its nbgrader ``grade_id`` or its cell id, and then

- given cells run the SOURCE version (a student cannot change given code),
- solution and ordinary code cells run the student's version,
- test cells (source or submitted) never run: verdicts are made by the trusted parent,
- experiment cells (the template's ``[code] experiment``: timing, plots) never run: the
  student runs them in Jupyter, grading gains nothing from them but time. Which cells they
  are comes from the source; a submission's own metadata marks nothing,
- cells the student added run as student code right after the matched cell before them.

Cells run in the source notebook's order; reordering is noted, deletion of a solution
cell is noted (its names are then simply missing).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field


class NotebookError(Exception):
    """The submission cannot be read as a notebook; the message is for the student."""


@dataclass(frozen=True)
class SourceCell:
    """A trusted cell of the assignment (from ``grader.authoring`` or the source notebook)."""

    id: str
    role: str               # markdown | given | solution | test | code | experiment
    source: str
    grade_id: str | None = None


@dataclass(frozen=True)
class StudentCell:
    index: int
    id: str | None
    grade_id: str | None
    cell_type: str
    source: str


@dataclass
class Plan:
    """What runs in the child, in order, plus what the TA should know about the matching."""

    cells: list[dict] = field(default_factory=list)   # {"id", "source", "role"}
    notes: list[str] = field(default_factory=list)


def parse(data: bytes) -> list[StudentCell]:
    """Notebook JSON -> its cells. Raises ``NotebookError`` with a student-readable reason."""
    if not data.strip():
        raise NotebookError("empty file: the notebook has no content (0 bytes or only blank space); "
                            "save it in Jupyter and submit it again")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotebookError("the file is not UTF-8 text, so not a Jupyter notebook") from None
    try:
        nb = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise NotebookError(f"the notebook is not valid JSON (corrupt or truncated file): {str(e)[:120]}") from None
    if not isinstance(nb, dict) or not ("cells" in nb or "worksheets" in nb or "nbformat" in nb):
        raise NotebookError("the file is JSON but not a Jupyter notebook (no 'cells' and no 'nbformat')")
    version = nb.get("nbformat")
    if version != 4:
        if version == 3 and isinstance(nb.get("worksheets"), list):
            return _parse_v3(nb)
        raise NotebookError(f"unsupported notebook format version {version!r} (expected nbformat 4); "
                            "save it again with a current Jupyter")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise NotebookError("the notebook's 'cells' is not a list")
    out = []
    for i, c in enumerate(cells):
        if not isinstance(c, dict):
            continue
        meta = c.get("metadata") if isinstance(c.get("metadata"), dict) else {}
        nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
        out.append(StudentCell(i, _str_or_none(c.get("id")), _str_or_none(nbg.get("grade_id")),
                               str(c.get("cell_type", "")), _source_text(c.get("source", ""))))
    return out


def _parse_v3(nb: dict) -> list[StudentCell]:
    out = []
    for ws in nb["worksheets"]:
        for c in ws.get("cells", []) if isinstance(ws, dict) else []:
            if isinstance(c, dict):
                meta = c.get("metadata") if isinstance(c.get("metadata"), dict) else {}
                nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
                out.append(StudentCell(len(out), None, _str_or_none(nbg.get("grade_id")),
                                       str(c.get("cell_type", "")), _source_text(c.get("input", c.get("source", "")))))
    return out


def _str_or_none(x) -> str | None:
    return x[:200] if isinstance(x, str) and x else None


def _source_text(src) -> str:
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def match(source: list[SourceCell], student: list[StudentCell], replace: dict[str, str] | None = None) -> Plan:
    """The cells to run, in source order; ``replace`` maps a given cell id to parent-side
    injection (e.g. ``load-data``), which becomes a ``{"inject": name}`` step."""
    replace = replace or {}
    plan = Plan()
    by_key = {}
    for sc in source:
        by_key.setdefault(sc.id, sc)
        if sc.grade_id:
            by_key.setdefault(sc.grade_id, sc)
    matched: dict[str, list[StudentCell]] = {}
    added: dict[str | None, list[StudentCell]] = {}
    anchor: str | None = None
    order = []
    for cell in student:
        target = by_key.get(cell.grade_id or "") or by_key.get(cell.id or "")
        if target is not None:
            matched.setdefault(target.id, []).append(cell)
            order.append(target.id)
            anchor = target.id
        elif cell.cell_type == "code" and cell.source.strip():
            added.setdefault(anchor, []).append(cell)
    if not student:
        plan.notes.append("the notebook has no cells")

    src_order = [sc.id for sc in source]
    seen = [i for i in dict.fromkeys(order)]
    if seen != [i for i in src_order if i in set(seen)]:
        plan.notes.append("cells were reordered; they were run in the assignment's order")

    first_code = next((sc.id for sc in source if sc.role != "markdown"), None)
    for sc in source:
        cells = matched.get(sc.id, [])
        if sc.role == "given":
            if sc.id in replace:
                plan.cells.append({"id": sc.id, "role": "inject", "inject": replace[sc.id]})
            else:
                plan.cells.append({"id": sc.id, "role": "given", "source": sc.source})
            if cells and any(c.source.strip() != sc.source.strip() for c in cells):
                plan.notes.append(f"given cell {sc.id} was edited; the original was run")
        elif sc.role in ("solution", "code"):
            code = [c for c in cells if c.cell_type == "code"]
            if not code and sc.role == "solution":
                what = "is not a code cell" if cells else "was deleted"
                plan.notes.append(f"solution cell {sc.id} {what}; the names it should define are missing")
            if len(code) > 1:
                plan.notes.append(f"{len(code)} cells carry the id of {sc.id}; all were run in order")
            for k, c in enumerate(code):
                plan.cells.append({"id": sc.id if k == 0 else f"{sc.id}~{k}", "role": sc.role, "source": c.source})
        elif sc.role == "experiment":
            pass  # the student's timing and plots: not run, whatever the submitted cell holds
        elif sc.role == "test" and not cells:
            plan.notes.append(f"test cell {sc.id} was deleted (graded anyway: tests run in the grader)")
        for c in added.pop(sc.id, []) + (added.pop(None, []) if sc.id == first_code else []):
            plan.cells.append({"id": f"added-{c.index}", "role": "added", "source": c.source})
    if added:  # anchors that are not in the source (should not happen) run last
        for cells in added.values():
            for c in cells:
                plan.cells.append({"id": f"added-{c.index}", "role": "added", "source": c.source})
    n_added = sum(1 for c in plan.cells if c["role"] == "added")
    if n_added:
        plan.notes.append(f"{n_added} cell(s) added by the student were run as student code")
    return plan
