"""Step 7, persist: one JSON record per submission, written atomically as soon as it is graded.

The resume key is the notebook's sha256 plus the grader's fingerprint (template, suite and
checks): a record is reused only when both match, so a changed submission or a changed
grader is regraded and an interrupted batch (even SIGKILL) loses at most the submissions
being graded at that moment.
"""
from __future__ import annotations

import json
from pathlib import Path

from grader.files import file_stem, write_atomic


def write_json_atomic(path: Path, obj) -> None:
    text = json.dumps(obj, indent=1, sort_keys=True, allow_nan=False, default=_jsonable) + "\n"
    write_atomic(path, text, fsync=True)


write_text_atomic = write_atomic


def _jsonable(x):
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


class Store:
    """``<out>/submissions/<stem>.json``, the stem from ``grader.files.file_stem`` (injective)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.dir = self.out / "submissions"

    def path(self, student: str) -> Path:
        return self.dir / f"{file_stem(student)}.json"

    def load(self, student: str) -> dict | None:
        try:
            return json.loads(self.path(student).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent, or a torn file from before atomic writes: regrade

    def is_current(self, student: str, sha256: str, fingerprint: str) -> dict | None:
        rec = self.load(student)
        if rec and rec.get("sha256") == sha256 and rec.get("grader") == fingerprint:
            return rec
        return None

    def save(self, record: dict) -> None:
        write_json_atomic(self.path(record["student"]), record)

    def all(self) -> list[dict]:
        out = []
        for p in sorted(self.dir.glob("*.json")):
            try:
                out.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out

    def stale_temp_files(self) -> None:
        for p in self.dir.glob(".*.tmp"):
            try:
                p.unlink()
            except OSError:
                pass
