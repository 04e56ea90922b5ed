"""Step 7, persist: one JSON record per submission, written atomically as soon as it is graded.

The resume key is the notebook's sha256 plus the grader's fingerprint (template, suite and
checks): a record is reused only when both match, so a changed submission or a changed
grader is regraded and an interrupted batch (even SIGKILL) loses at most the submissions
being graded at that moment.

One batch per output folder: records of students who are not in the graded input are
moved aside (``submissions/.stale/<time>/``) so that every output describes one class.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from grader.files import WriteError, file_stem, write_atomic
from grader.reports.records import points

STALE_DIR = ".stale"


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
        """Points rounded by the one rule (``records.points``); the TA's manual grades of an
        earlier version carried over (they belong to the student, and a resubmission that
        changes the automatic score is what makes them stale, see ``gradebook.sync_nbgrader``)."""
        record = dict(record)
        if "manual" not in record:
            old = self.load(record["student"])
            if old and old.get("manual"):
                record["manual"] = old["manual"]
        tests = [dict(t, points=points(t.get("points"))) for t in record.get("tests") or []]
        record["tests"] = tests
        record["total"] = points(sum(t["points"] for t in tests)) if tests else points(record.get("total"))
        write_json_atomic(self.path(record["student"]), record)

    def all(self) -> list[dict]:
        out = []
        for p in sorted(self.dir.glob("*.json")):
            try:
                out.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out

    def move_aside(self, keep: set[str]) -> tuple[Path | None, list[str]]:
        """Move the records of students not in ``keep`` to ``submissions/.stale/<time>/``;
        returns that folder and the students moved (nothing is deleted)."""
        kept = {self.path(s).name for s in keep}
        others = sorted(p for p in self.dir.glob("*.json") if not p.name.startswith(".") and p.name not in kept)
        if not others:
            return None, []
        dest = self.dir / STALE_DIR / time.strftime("%Y%m%d-%H%M%S")
        n = 1
        while dest.exists():
            n += 1
            dest = dest.with_name(f"{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        try:
            dest.mkdir(parents=True)
            for p in others:
                os.replace(p, dest / p.name)
        except OSError as e:
            raise WriteError(dest, e) from e
        return dest, [self._student_in(dest / p.name) for p in others]

    @staticmethod
    def _student_in(path: Path) -> str:
        try:
            return str(json.loads(path.read_text(encoding="utf-8"))["student"])
        except (OSError, ValueError, KeyError, TypeError):
            return path.stem

    def check_writable(self) -> None:
        """Fail before grading, with ``WriteError``, when no record could be saved."""
        write_atomic(self.dir / ".write-test", "")
        try:
            (self.dir / ".write-test").unlink()
        except OSError:
            pass

    def stale_temp_files(self) -> None:
        for p in self.dir.glob(".*.tmp"):
            try:
                p.unlink()
            except OSError:
                pass
