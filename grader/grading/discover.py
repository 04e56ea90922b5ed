"""Step 1, discover: PATH -> one ``Submission`` per student (bytes, hash, notes).

PATH may be an nbgrader ``submitted/`` tree (``<student>/<A>/<A>.ipynb``), a folder of
``.ipynb`` files (the student id is the file name), an LMS-style zip of notebooks, or one
notebook. Zips are read in memory, member by member, with size caps: nothing is
extracted to disk, so a member named ``../../etc/x`` is just a name.

Several notebooks for one student (a renamed notebook next to the expected one, two
uploads in a zip) are duplicates: the newest is kept (file mtime, zip date; the last
one on a tie) and the choice is noted.
"""
from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MAX_NOTEBOOK_BYTES = 20 << 20   # a bigger "notebook" is graded as unreadable
MAX_ZIP_TOTAL_BYTES = 2 << 30   # sum of uncompressed member sizes read from one zip
MAX_ZIP_MEMBERS = 20000
MAX_COMPRESSION_RATIO = 200     # zip bombs

_STUDENT_OK = re.compile(r"[^A-Za-z0-9_.@+-]+")


@dataclass
class Submission:
    student: str
    source: str                  # where it came from (path, or zip!member), for the TA
    data: bytes | None           # None when unreadable (``error`` says why)
    mtime: float = 0.0
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data or b"").hexdigest()


class DiscoveryError(Exception):
    """PATH is not something we can grade (missing, empty folder, unreadable zip)."""


def student_id(raw: str) -> str:
    """A safe student id: used as a file name and a gradebook key."""
    sid = _STUDENT_OK.sub("_", raw).strip("._") or "unnamed"
    return sid[:100]


def discover(path: Path | str, assignment: str) -> list[Submission]:
    """Every submission under ``path``, one per student, sorted by student id."""
    path = Path(path)
    if not path.exists():
        raise DiscoveryError(f"{path} does not exist")
    if path.is_file() and zipfile.is_zipfile(path):
        found = _from_zip(path, assignment)
    elif path.is_file():
        found = [_read_file(path, _student_from_file(path, assignment), path.name)]
    elif _is_submitted_tree(path, assignment):
        found = _from_submitted_tree(path, assignment)
    else:
        found = [_read_file(p, _student_from_file(p, assignment), str(p.relative_to(path)))
                 for p in sorted(path.glob("*.ipynb")) if p.is_file()]
        for z in sorted(path.glob("*.zip")):
            found += _from_zip(z, assignment)
    if not found:
        raise DiscoveryError(f"no notebooks found under {path} (expected {path}/<student>/{assignment}/"
                             f"{assignment}.ipynb, a folder of .ipynb files, a zip, or one notebook)")
    return _dedupe(found)


# -- the three layouts ---------------------------------------------------------------------

def _is_submitted_tree(path: Path, assignment: str) -> bool:
    return any((d / assignment).is_dir() for d in path.iterdir() if d.is_dir())


def _from_submitted_tree(root: Path, assignment: str) -> list[Submission]:
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        folder = d / assignment
        if not folder.is_dir() or folder.is_symlink():
            continue
        student = student_id(d.name)
        notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.is_symlink())
        if not notebooks:
            out.append(Submission(student, str(folder.relative_to(root.parent)), None,
                                  error=f"no notebook in {folder.name}/ (expected {assignment}.ipynb)"))
            continue
        for nb in notebooks:
            sub = _read_file(nb, student, str(nb.relative_to(root.parent)))
            if nb.name != f"{assignment}.ipynb":
                sub.notes.append(f"notebook is named {nb.name!r}, expected {assignment + '.ipynb'!r}; "
                                 "graded anyway")
            out.append(sub)
    return out


def _student_from_file(path: Path | PurePosixPath, assignment: str) -> str:
    """``alice.ipynb`` -> alice; ``alice_tensor_edf.ipynb`` -> alice; LMS ``alice_123_tensor_edf``."""
    stem = path.stem
    for suffix in (f"_{assignment}", f"-{assignment}", f".{assignment}"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    return student_id(stem)


def _read_file(path: Path, student: str, source: str) -> Submission:
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return Submission(student, source, None, path.stat().st_mtime,
                              error=f"file is {size >> 20} MB, over the {MAX_NOTEBOOK_BYTES >> 20} MB limit")
        return Submission(student, source, path.read_bytes(), path.stat().st_mtime)
    except OSError as e:
        return Submission(student, source, None, error=f"cannot read the file: {e.strerror}")


def _from_zip(path: Path, assignment: str) -> list[Submission]:
    """Notebooks inside a zip, read in memory with size caps (no extraction, no traversal)."""
    out, total = [], 0
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise DiscoveryError(f"{path}: {len(infos)} members, over the limit of {MAX_ZIP_MEMBERS}")
            for order, info in enumerate(infos):
                name = PurePosixPath(info.filename.replace("\\", "/"))
                # hidden files and macOS resource forks are not submissions; ".." in a name
                # is only a name (nothing is extracted)
                if info.is_dir() or name.suffix != ".ipynb" or name.name.startswith(".") or "__MACOSX" in name.parts:
                    continue
                student = _student_in_zip(name, assignment)
                source = f"{path.name}!{info.filename}"
                mtime = _zip_time(info) + order * 1e-6  # later member wins a tie
                ratio = info.file_size / max(info.compress_size, 1)
                if info.file_size > MAX_NOTEBOOK_BYTES or ratio > MAX_COMPRESSION_RATIO:
                    out.append(Submission(student, source, None, mtime,
                                          error=f"zip member of {info.file_size >> 20} MB (ratio {ratio:.0f}) "
                                                "refused: over the size limits"))
                    continue
                total += info.file_size
                if total > MAX_ZIP_TOTAL_BYTES:
                    raise DiscoveryError(f"{path}: more than {MAX_ZIP_TOTAL_BYTES >> 30} GB uncompressed")
                try:
                    with z.open(info) as f:
                        data = f.read(MAX_NOTEBOOK_BYTES + 1)
                except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as e:
                    out.append(Submission(student, source, None, mtime, error=f"cannot read zip member: {e}"))
                    continue
                if len(data) > MAX_NOTEBOOK_BYTES:
                    out.append(Submission(student, source, None, mtime, error="zip member over the size limit"))
                    continue
                out.append(Submission(student, source, data, mtime))
    except zipfile.BadZipFile as e:
        raise DiscoveryError(f"{path}: not a readable zip ({e})") from None
    return out


def _student_in_zip(name: PurePosixPath, assignment: str) -> str:
    """``submitted/alice/A/A.ipynb`` or ``alice/A.ipynb`` -> alice; ``alice.ipynb`` -> alice."""
    parts = [p for p in name.parts if p not in ("", "..", ".", "/")]
    if len(parts) >= 3 and parts[-2] == assignment:
        return student_id(parts[-3])
    if len(parts) >= 2 and name.stem == assignment:
        return student_id(parts[-2])
    return _student_from_file(PurePosixPath(parts[-1]), assignment)


def _zip_time(info: zipfile.ZipInfo) -> float:
    import datetime

    try:
        return datetime.datetime(*info.date_time).timestamp()
    except (ValueError, OverflowError):
        return 0.0


# -- duplicates ----------------------------------------------------------------------------

def _dedupe(found: list[Submission]) -> list[Submission]:
    by_student: dict[str, list[Submission]] = {}
    for s in found:
        by_student.setdefault(s.student, []).append(s)
    out = []
    for student in sorted(by_student):
        subs = by_student[student]
        # readable ones first, then newest, then the last listed
        ranked = sorted(enumerate(subs), key=lambda t: (t[1].data is not None, t[1].mtime, t[0]))
        keep = ranked[-1][1]
        if len(subs) > 1:
            dropped = ", ".join(s.source for _, s in ranked[:-1])
            keep.notes.append(f"{len(subs)} submissions for {student}: graded the newest, {keep.source}; "
                              f"ignored {dropped}")
        out.append(keep)
    return out
