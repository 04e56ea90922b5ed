"""Applying docs/add-a-component.md to a copy of the repository, block by block, as an
instructor would: "Append to `path`:" and "Insert after the line `...` in `path`:" each
followed by one fenced block."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "add-a-component.md"
STEP = re.compile(r"^(?:Append to `(?P<append>[^`]+)`|Insert after the line `(?P<after>[^`]+)` in `(?P<into>[^`]+)`):\n\n"
                  r"```[a-z]*\n(?P<code>.*?)^```", re.M | re.S)


def steps(doc: Path = DOC) -> list[dict]:
    """The edits the walkthrough asks for, in order: {path, after (or None), code}."""
    return [{"path": m["append"] or m["into"], "after": m["after"], "code": m["code"]}
            for m in STEP.finditer(doc.read_text(encoding="utf-8"))]


def copy_repository(dst: Path) -> Path:
    """What generating, auditing and grading tensor_edf needs: the reference, the grader and
    that one assignment (no tests, docs or other assignments)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("reference", "grader"):
        shutil.copytree(REPO / part, dst / part, ignore=ignore)
    shutil.copytree(REPO / "assignments" / "tensor_edf", dst / "assignments" / "tensor_edf", ignore=ignore)
    return dst


def apply(root: Path, edits: list[dict]) -> None:
    """Make each edit in the copy; an edit whose anchor line is missing or not unique fails."""
    for e in edits:
        path = root / e["path"]
        text = path.read_text(encoding="utf-8")
        if e["after"] is None:
            text = text.rstrip("\n") + "\n\n\n" + e["code"]
        else:
            lines = text.splitlines(keepends=True)
            at = [i for i, line in enumerate(lines) if line.rstrip("\n") == e["after"]]
            if len(at) != 1:
                raise AssertionError(f"{e['path']}: the line {e['after']!r} occurs {len(at)} times")
            lines[at[0] + 1:at[0] + 1] = [e["code"]]
            text = "".join(lines)
        path.write_text(text, encoding="utf-8")
