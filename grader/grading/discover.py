"""Step 1, discover: PATH -> one ``Submission`` per student (bytes, hash, notes, flags).

PATH may be an nbgrader ``submitted/`` tree (``<student>/<A>/<A>.ipynb``), a folder of
``.ipynb`` files (the student id is the file name), one notebook, or an LMS's
"download all submissions" export (a zip, or that zip unpacked into a folder):

- Moodle (``mod/assign/classes/downloader.php``): a folder per participant,
  ``<Full Name>_<participant id>_assignsubmission_file[_]/<uploaded files>``
  (``..._onlinetext_`` for online text); with "download as folders" off, flat names
  ``<Full Name>_<participant id>_assignsubmission_file_<file>``. Moodle writes the
  full name with ``_`` replaced by spaces, so the first ``_<digits>_assignsubmission_``
  ends the LMS's part.
- Canvas (``lib/content_zipper.rb``): flat names ``<sortable name>[_LATE]_<user id>_
  <attachment id>_<file>`` (the name lower-cased, non-word characters removed, any
  ``_<digits>_`` in it collapsed; ``anon_<id>`` when anonymised); a re-upload of a
  file name gets ``-1``, ``-2``... Canvas has no upload time: the larger attachment id
  is the later upload. A user name ending in ``_<digits>`` makes a name read two ways:
  the reading that agrees with the student's other uploads wins, else the file is nobody's.
- Blackboard ("Assignment File Download"): ``<Assignment>_<username>_attempt_
  <YYYY-MM-DD-HH-MM-SS>_<file>`` plus a receipt ``<...>_attempt_<stamp>.txt``
  (``Name: Full Name (username)``, ``Date Submitted: ...``).
- Gradescope ("Export Submissions"): ``submission_metadata.yml`` (``submission_<id>:``
  with ``:submitters:`` ``- :name: / :sid: / :email:`` and ``:created_at:``) beside a
  folder ``submission_<id>/`` per submission (the layout otter-grader's
  GradescopeParser reads).

Whose file it is comes from the LMS's part of the path only (the folder, or the prefix
the LMS wrote before the uploaded file's own name); nothing inside a file, and nothing
in the name a student gave a file, decides it. All files of one student are resolved as
a folder is: the notebook named like the assignment, else the newest (LMS upload time,
attempt stamp, attachment id), with a note and a flag (``several files``, ``misnamed``).
A file whose own name claims another student's id is flagged on both students and
never used for the other one.

Zips are read in memory, member by member, with size caps: nothing is extracted to disk,
so a member named ``../../etc/x`` is just a name; symlink members are refused; a zip
inside a zip (a student's upload) is read the same way, one level deep.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import os
import re
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

MAX_NOTEBOOK_BYTES = 20 << 20   # a bigger "notebook" is graded as unreadable
MAX_ZIP_TOTAL_BYTES = 2 << 30   # sum of uncompressed member sizes read from one input
MAX_NESTED_ZIP_BYTES = 200 << 20
MAX_METADATA_BYTES = 4 << 20    # Blackboard receipts, Gradescope's submission_metadata.yml
MAX_ZIP_MEMBERS = 20000
MAX_COMPRESSION_RATIO = 200     # zip bombs
MAX_NESTING = 2                 # the export zip, and a zip a student uploaded inside it
MAX_ID_CHARS = 100

LMS_NAMES = {"moodle": "Moodle", "canvas": "Canvas", "blackboard": "Blackboard", "gradescope": "Gradescope"}


@dataclass
class Submission:
    student: str
    source: str                  # where it came from (path, or zip!member), for the TA
    data: bytes | None           # None when unreadable (``error`` says why)
    mtime: float = 0.0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    name: str | None = None      # display name from the LMS, when it gives one
    lms: str | None = None       # "moodle" | "canvas" | "blackboard" | "gradescope" | None
    submitted_at: str | None = None  # the LMS's upload time (ISO 8601), when it gives one
    late: bool | None = None     # the LMS's late marker; None: the export does not say
    email: str | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data or b"").hexdigest()


def identity(sub: Submission) -> dict:
    """The record fields that say who and when (copied into every record)."""
    return {"name": sub.name, "lms": sub.lms, "submitted_at": sub.submitted_at, "late": sub.late,
            "email": sub.email}


class DiscoveryError(Exception):
    """PATH is not something we can grade (missing, empty folder, unreadable zip)."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def student_id(raw: str) -> str:
    """A student id as the input spells it: control characters dropped, whitespace trimmed,
    NFC. Distinct ids stay distinct (``x+y``, ``x_y`` and ``x y`` are three students);
    ``grader.files.file_stem`` makes file names of them."""
    sid = unicodedata.normalize("NFC", _CONTROL.sub("", str(raw))).strip()
    if len(sid) > MAX_ID_CHARS:
        sid = sid[:MAX_ID_CHARS - 13] + "~" + hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return sid or "unnamed"


class Found(list):
    """``discover``'s answer: the submissions, one per student, sorted by student id; and in
    ``unmatched`` the notebooks of an LMS export that belong to no student (``{"file",
    "reason"}``): never graded, never a student, listed for the TA."""

    def __init__(self, subs: list[Submission], unmatched: list[dict]) -> None:
        super().__init__(subs)
        self.unmatched = unmatched


def discover(path: Path | str, assignment: str) -> Found:
    """Every submission under ``path``, one per student, sorted by student id (``Found``)."""
    path = Path(path)
    unmatched: list[dict] = []
    if not path.exists():
        raise DiscoveryError(f"{path} does not exist")
    if path.is_file() and zipfile.is_zipfile(path):
        found = _from_entries(_zip_entries(path, _Budget()), assignment, unmatched)
    elif path.is_file():
        found = [_read_file(path, _student_from_file(path, assignment), path.name)]
    else:
        # an unpacked LMS export first: a student's upload may hold a folder named like the assignment
        entries = _folder_entries(path)
        if _layout([e for e in _strip_wrapper(entries) if e.depth == 0]):
            found = _from_entries(entries, assignment, unmatched)
        elif _is_submitted_tree(path, assignment):
            found = _from_submitted_tree(path, assignment)
        else:
            found = [_read_file(p, _student_from_file(p, assignment), str(p.relative_to(path)))
                     for p in sorted(path.glob("*.ipynb")) if p.is_file() and not p.is_symlink()]
            for z in sorted(path.glob("*.zip")):
                if not z.is_symlink():
                    found += _from_entries(_zip_entries(z, _Budget()), assignment, unmatched)
    if not found and unmatched:
        raise DiscoveryError(f"no submission in {path}: {len(unmatched)} notebook(s), none named as the LMS names a "
                             f"student's submission ({unmatched[0]['reason']})")
    if not found:
        raise DiscoveryError(f"no notebooks found under {path} (expected {path}/<student>/{assignment}/"
                             f"{assignment}.ipynb, a folder of .ipynb files, an LMS export (Moodle, Canvas, "
                             "Blackboard, Gradescope) as a zip or a folder, or one notebook)")
    return Found(_dedupe(found), unmatched)


# -- nbgrader's submitted/ tree and plain folders -------------------------------------------

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
        subs = [_read_file(nb, student, str(nb.relative_to(root.parent))) for nb in notebooks]
        out.append(_pick_in_folder(subs, [nb.name for nb in notebooks], assignment))
    return out


def _pick_in_folder(subs: list[Submission], names: list[str], assignment: str) -> Submission:
    """The notebook named like the assignment, else the newest; a note and a flag otherwise."""
    named = [s for s, n in zip(subs, names) if _named_like(n, assignment)]
    keep = max(named or subs, key=lambda s: (s.data is not None, s.mtime))
    name = names[subs.index(keep)]
    if len(subs) > 1:
        keep.flags.append(f"several files: {len(subs)} notebooks in the folder; graded {name!r}")
        keep.notes.append(f"{len(subs)} notebooks in the folder: graded {name!r} "
                          f"({'named like the assignment' if named else 'the newest'}); ignored "
                          + ", ".join(repr(n) for n in names if n != name))
    if not named:
        keep.flags.append(f"misnamed: graded {name!r}, expected {assignment + '.ipynb'!r}")
        keep.notes.append(f"notebook is named {name!r}, expected {assignment + '.ipynb'!r}; graded anyway")
    return keep


def _student_from_file(path: Path | PurePosixPath, assignment: str) -> str:
    """``alice.ipynb`` -> alice; ``alice_tensor_edf.ipynb`` -> alice."""
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


# -- entries: the files of a zip (nested zips included) or of a folder, never extracted -----

@dataclass
class _Entry:
    parts: tuple[str, ...]        # path inside the input; "", ".", ".." dropped
    source: str                   # for the TA: zip!member or a relative path
    order: int
    mtime: float
    read: Callable[[], bytes]     # raises _Unreadable
    escaped: bool = False         # the name had ".." or was absolute
    depth: int = 0                # 0: the export itself; 1: inside a zip a student uploaded
    error: str | None = None
    ambiguous: list[str] = field(default_factory=list)  # the students its name could belong to

    @property
    def name(self) -> str:
        return self.parts[-1]


class _Unreadable(Exception):
    pass


class _Budget:
    """Caps shared by every zip read for one input."""

    def __init__(self) -> None:
        self.total = 0
        self.members = 0
        self.order = 0

    def next(self) -> int:
        self.order += 1
        return self.order


def _clean_parts(name: str) -> tuple[tuple[str, ...], bool]:
    raw = name.replace("\\", "/")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    escaped = raw.startswith("/") or ".." in parts or bool(re.match(r"^[A-Za-z]:", raw))
    return tuple(p for p in parts if p != ".."), escaped


def _skip(parts: tuple[str, ...]) -> bool:
    """Hidden files and macOS resource forks are not submissions."""
    return not parts or "__MACOSX" in parts or parts[-1].startswith(".")


def _zip_entries(path: Path, budget: _Budget, data: bytes | None = None, prefix: tuple[str, ...] = (),
                 source: str | None = None, depth: int = 0) -> list[_Entry]:
    out: list[_Entry] = []
    label = source or path.name
    try:
        with zipfile.ZipFile(io.BytesIO(data) if data is not None else path) as z:
            infos = z.infolist()
            budget.members += len(infos)
            if budget.members > MAX_ZIP_MEMBERS:
                raise DiscoveryError(f"{label}: over the limit of {MAX_ZIP_MEMBERS} zip members")
            for info in infos:
                parts, escaped = _clean_parts(info.filename)
                if info.is_dir() or _skip(parts):
                    continue
                parts = prefix + parts
                src = f"{label}!{info.filename}"
                mtime = _zip_time(info)
                order = budget.next()
                if stat.S_ISLNK(info.external_attr >> 16):
                    out.append(_Entry(parts, src, order, mtime, _refuse("a symbolic link"), escaped, depth,
                                      error="symbolic link refused"))
                    continue
                nested = parts[-1].lower().endswith(".zip") and depth + 1 < MAX_NESTING and not escaped
                limit = MAX_NESTED_ZIP_BYTES if nested else _read_limit(parts[-1])
                if limit is None:  # only its name matters (a PDF beside the notebook): never read
                    out.append(_Entry(parts, src, order, mtime, _refuse("not read (not a notebook)"), escaped, depth))
                    continue
                ratio = info.file_size / max(info.compress_size, 1)
                if info.file_size > limit or ratio > MAX_COMPRESSION_RATIO:
                    why = (f"zip member of {info.file_size >> 20} MB (ratio {ratio:.0f}) refused: "
                           "over the size limits")
                    out.append(_Entry(parts, src, order, mtime, _refuse(why), escaped, depth, error=why))
                    continue
                budget.total += info.file_size
                if budget.total > MAX_ZIP_TOTAL_BYTES:
                    raise DiscoveryError(f"{label}: more than {MAX_ZIP_TOTAL_BYTES >> 30} GB uncompressed")
                reader = _member_reader(z, info, limit)
                if nested:
                    try:
                        inner = reader()
                    except _Unreadable as e:
                        out.append(_Entry(parts, src, order, mtime, _refuse(str(e)), escaped, depth, error=str(e)))
                        continue
                    try:
                        out += _zip_entries(path, budget, inner, parts, src, depth + 1)
                    except DiscoveryError as e:
                        out.append(_Entry(parts, src, order, mtime, _refuse(str(e)), escaped, depth, error=str(e)))
                    continue
                out.append(_Entry(parts, src, order, mtime, reader, escaped, depth))
    except zipfile.BadZipFile as e:
        if depth:
            raise DiscoveryError(f"{label}: not a readable zip ({e})") from None
        raise DiscoveryError(f"{path}: not a readable zip ({e})") from None
    return out


def _read_limit(name: str) -> int | None:
    """How much of a file may be read: notebooks, and the LMS's own receipts and metadata."""
    name = name.lower()
    if name.endswith(".ipynb"):
        return MAX_NOTEBOOK_BYTES
    if name.endswith((".txt", ".yml", ".yaml")):
        return MAX_METADATA_BYTES
    return None


def _member_reader(z: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> Callable[[], bytes]:
    # read now (the ZipFile closes when listing ends); members are capped above
    try:
        with z.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as e:
        return _refuse(f"cannot read zip member: {e}")
    if len(data) > limit:
        return _refuse("zip member over the size limit")
    return lambda: data


def _refuse(why: str) -> Callable[[], bytes]:
    def read() -> bytes:
        raise _Unreadable(why)
    return read


def _folder_entries(root: Path) -> list[_Entry]:
    """Files under ``root`` (an LMS export someone unzipped), symlinks never followed."""
    out: list[_Entry] = []
    budget = _Budget()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            parts = p.relative_to(root).parts
            if _skip(parts):
                continue
            if len(out) > MAX_ZIP_MEMBERS:
                raise DiscoveryError(f"{root}: over the limit of {MAX_ZIP_MEMBERS} files")
            order = budget.next()
            if p.is_symlink():
                out.append(_Entry(parts, str(p.relative_to(root)), order, 0.0, _refuse("a symbolic link"),
                                  error="symbolic link refused"))
                continue
            try:
                st = p.stat()
            except OSError as e:
                out.append(_Entry(parts, str(p.relative_to(root)), order, 0.0, _refuse(str(e)), error=str(e)))
                continue
            if fn.lower().endswith(".zip") and st.st_size <= MAX_NESTED_ZIP_BYTES and zipfile.is_zipfile(p):
                try:
                    out += _zip_entries(p, budget, prefix=parts, source=str(p.relative_to(root)), depth=1)
                except DiscoveryError as e:
                    out.append(_Entry(parts, str(p.relative_to(root)), order, st.st_mtime, _refuse(str(e)),
                                      error=str(e)))
                continue
            out.append(_Entry(parts, str(p.relative_to(root)), order, st.st_mtime, _file_reader(p, st.st_size, _read_limit(fn))))
    return out


def _file_reader(p: Path, size: int, limit: int | None) -> Callable[[], bytes]:
    def read() -> bytes:
        if limit is None:
            raise _Unreadable("not read (not a notebook)")
        if size > limit:
            raise _Unreadable(f"file is {size >> 20} MB, over the {limit >> 20} MB limit")
        try:
            return p.read_bytes()
        except OSError as e:
            raise _Unreadable(f"cannot read the file: {e.strerror}") from None
    return read


def _zip_time(info: zipfile.ZipInfo) -> float:
    try:
        return datetime.datetime(*info.date_time).timestamp()
    except (ValueError, OverflowError):
        return 0.0


# -- LMS layouts: who owns a file, from the LMS's part of its path ----------------------------

_MOODLE = re.compile(r"^(?P<name>.*?)_(?P<id>\d+)_assign(?:submission|feedback)_(?P<plugin>[a-z]+)(?:_(?P<rest>.*))?$",
                     re.S)
_CANVAS = re.compile(r"^(?:(?P<name>.*?)_)??(?:(?P<late>LATE|late)_)?(?P<id>\d+|anon_[A-Za-z0-9]+)_(?P<att>\d+)_"
                     r"(?P<file>.+)$", re.S)
_CANVAS_TEXT = re.compile(r"^(?:(?P<name>.*?)_)??(?:(?P<late>LATE|late)_)?(?P<id>\d+|anon_[A-Za-z0-9]+)_"
                          r"(?P<file>text\.html|link\.html)$", re.S)
_BLACKBOARD = re.compile(r"^(?P<prefix>(?P<assignment>.*?)_(?P<id>[^_]+)_attempt_(?P<stamp>\d{4}(?:-\d\d){5}))"
                         r"(?:_(?P<file>.+)|\.txt)$", re.S)
_GRADESCOPE_DIR = re.compile(r"^submission_(?P<sub>\d+)$")


def _layout(entries: list[_Entry]) -> str | None:
    """Which LMS wrote these (top-level) entries, from its documented naming; None: none."""
    tops = [e.parts for e in entries if not e.escaped]
    if any(p[-1] == "submission_metadata.yml" for p in tops if len(p) <= 2):
        return "gradescope"
    for name, test in (("moodle", lambda p: _MOODLE.match(p[0]) or (len(p) > 1 and _MOODLE.match(p[1]))),
                       ("blackboard", lambda p: _BLACKBOARD.match(p[-1]) and len(p) <= 2),
                       ("canvas", lambda p: (_CANVAS.match(p[-1]) or _CANVAS_TEXT.match(p[-1])) and len(p) <= 2)):
        hits = sum(1 for p in tops if test(p))
        if hits and hits * 2 >= len(tops):
            return name
    return None


@dataclass
class _Claim:
    """One file the LMS's naming puts under one student."""
    student: str
    name: str | None
    entry: _Entry
    filename: str                 # the name the student gave the file (the LMS's part removed)
    when: tuple                   # sort key: later is newer
    submitted_at: str | None = None
    late: bool | None = None
    attempt: str | None = None    # Blackboard's attempt stamp
    email: str | None = None
    also_reads_as: list[str] = field(default_factory=list)  # other owners the LMS's part could name


def _strip_wrapper(entries: list[_Entry]) -> list[_Entry]:
    """Drop folders every entry shares (``assignment_123_export/``, a re-zipped download)."""
    while entries and all(len(e.parts) > 1 for e in entries) and len({e.parts[0] for e in entries}) == 1 \
            and not _MOODLE.match(entries[0].parts[0]) and not _GRADESCOPE_DIR.match(entries[0].parts[0]):
        for e in entries:
            e.parts = e.parts[1:]
    return entries


def _from_entries(entries: list[_Entry], assignment: str, unmatched: list[dict]) -> list[Submission]:
    """The submissions of an LMS export (or a plain zip); notebooks that belong to no
    student go to ``unmatched``."""
    entries = _strip_wrapper(entries)
    layout = _layout([e for e in entries if e.depth == 0])
    if layout is None:
        return _generic(entries, assignment)
    claims, stray, escaped = {"moodle": _moodle, "canvas": _canvas, "blackboard": _blackboard,
                              "gradescope": _gradescope}[layout](entries, assignment)
    by_student: dict[str, list[_Claim]] = {}
    for c in claims:
        by_student.setdefault(c.student, []).append(c)
    out = [_resolve(layout, student, cs, assignment) for student, cs in sorted(by_student.items())]
    _flag_claims_on_others(out, by_student, assignment)
    subs = {s.student: s for s in out}
    for student, e in escaped:
        if student not in subs:
            subs[student] = Submission(student, e.source, None, lms=layout,
                                       error="no notebook in the upload (a file with a path outside its "
                                             "folder was refused)")
            out.append(subs[student])
        subs[student].flags.append(f"suspicious: a file with a path outside its folder was refused ({e.source})")
        for target in sorted(set().union(*(_ids_named_in(n, assignment, subs) for n in e.parts[1:])) - {student}):
            if target in subs:
                subs[target].flags.append(f"suspicious: another student's upload ({student}) has a file named "
                                          f"as yours ({e.source}); it was not used for you")
    out.sort(key=lambda s: s.student)
    name = LMS_NAMES[layout]
    for e in stray:
        if not e.name.endswith(".ipynb"):
            continue
        # not named by the LMS: whose it is is unknown, so it is nobody's: never graded, never
        # a student, listed for the TA
        if e.escaped:
            why = f"suspicious: {e.source} has a path outside the export; refused"
        elif e.ambiguous:
            why = (f"suspicious: the name {e.source} reads as a submission of several students "
                   f"({', '.join(e.ambiguous)}); not graded")
        else:
            why = f"unmatched: {e.source} is not named as {name} names submissions; not graded"
        unmatched.append({"file": e.source, "reason": why})
    return out


def _submission(student: str, e: _Entry) -> Submission:
    mtime = e.mtime + e.order * 1e-6  # a later member wins a tie
    if e.error:
        return Submission(student, e.source, None, mtime, error=e.error)
    try:
        return Submission(student, e.source, e.read(), mtime)
    except _Unreadable as err:
        return Submission(student, e.source, None, mtime, error=str(err))


def _iso(ts: float) -> str | None:
    return datetime.datetime.fromtimestamp(ts).isoformat(timespec="seconds") if ts > 0 else None


_Parsed = tuple[list[_Claim], list[_Entry], list[tuple[str, _Entry]]]


def _moodle(entries: list[_Entry], assignment: str) -> _Parsed:
    claims, stray, escaped = [], [], []
    for e in entries:
        m = _MOODLE.match(e.parts[0])
        if not m or m["plugin"] not in ("file", "onlinetext") or "assignfeedback" in e.parts[0]:
            stray.append(e)
            continue
        owner = student_id(m["id"])
        if e.escaped:
            escaped.append((owner, e))
            continue
        rest = m["rest"] or ""
        # folder form: the folder is the LMS's part, everything below it the student's
        filename = e.parts[-1] if len(e.parts) > 1 else rest
        if not filename:
            stray.append(e)
            continue
        claims.append(_Claim(owner, m["name"].strip() or None, e, filename, (e.mtime, e.order),
                             submitted_at=_iso(e.mtime) if "!" in e.source and e.depth == 0 else None))
    return claims, stray, escaped


_CANVAS_REST = re.compile(r"^(?:(?P<late>LATE|late)_)?(?P<id>\d+|anon_[A-Za-z0-9]+)_(?P<att>\d+)_(?P<file>.+)$", re.S)


def _canvas_parses(name: str) -> list[tuple[str, bool, str, int, str]]:
    """Every reading of a Canvas name as ``(name, late, user id, attachment id, file)``.

    Canvas removes ``_<digits>_`` from the user's name (lib/content_zipper.rb,
    sanitize_user_name), so a reading whose name holds one is not Canvas's; a name that
    ENDS in ``_<digits>`` (a student who renamed themselves ``x_12342``) still leaves two
    readings, which ``_canvas`` settles against the rest of the export.
    """
    out, seen = [], set()
    for i in [0] + [k for k, ch in enumerate(name) if ch == "_"]:
        head, rest = (name[:i], name[i + 1:]) if i else ("", name)
        m = _CANVAS_REST.match(rest)
        if not m or re.search(r"_\d+_", head) or (i and not head):
            continue
        if m["id"] not in seen:
            seen.add(m["id"])
            out.append((head, bool(m["late"]), m["id"], int(m["att"]), m["file"]))
    return out


def _canvas(entries: list[_Entry], assignment: str) -> _Parsed:
    claims, stray, escaped = [], [], []
    readings = {}
    for e in entries:
        parses = _canvas_parses(e.parts[0])
        if not parses:
            m = _CANVAS_TEXT.match(e.parts[0])
            parses = [(m["name"] or "", bool(m["late"]), m["id"], 0, m["file"])] if m else []
        readings[id(e)] = parses
    # a user id's name, from the names only one way to read
    owners: dict[str, str] = {}
    for e in entries:
        if len(readings[id(e)]) == 1:
            owners.setdefault(readings[id(e)][0][2], readings[id(e)][0][0])
    for e in entries:
        parses = readings[id(e)]
        if not parses:
            stray.append(e)
            continue
        ambiguous = []
        if len(parses) > 1:
            exact = [p for p in parses if owners.get(p[2]) == p[0]]
            fits = exact or [p for p in parses if p[2] not in owners]
            if len(fits) != 1:  # no way to tell whose it is: nobody's, and the TA is told
                e.ambiguous = [student_id(p[2]) for p in parses]
                stray.append(e)
                continue
            ambiguous = [p[2] for p in parses if p is not fits[0]]
            parses = fits
        name, late, uid, att, file = parses[0]
        owner = student_id(uid)
        if e.escaped:
            escaped.append((owner, e))
            continue
        filename = e.parts[-1] if len(e.parts) > 1 else file
        claim = _Claim(owner, name or None, e, filename, (att, e.order), late=late)
        claim.also_reads_as = [student_id(u) for u in ambiguous]
        claims.append(claim)
    return claims, stray, escaped


_BB_NAME = re.compile(r"^Name:\s*(?P<name>.*?)\s*\((?P<id>[^()\n]+)\)\s*$", re.M)
_BB_DATE = re.compile(r"^Date Submitted:\s*(?P<date>.+?)\s*$", re.M)


def _blackboard(entries: list[_Entry], assignment: str) -> _Parsed:
    receipts: dict[str, tuple[str | None, str | None, str | None]] = {}
    for e in entries:
        m = _BLACKBOARD.match(e.parts[0])
        if m and len(e.parts) == 1 and m["file"] is None and not e.escaped and e.depth == 0:
            try:
                text = e.read()[:65536].decode("utf-8", "replace")
            except _Unreadable:
                continue
            n, d = _BB_NAME.search(text), _BB_DATE.search(text)
            receipts[m["prefix"]] = (n["name"] if n else None, n["id"].strip() if n else None, d["date"] if d else None)
    claims, stray, escaped = [], [], []
    for e in entries:
        m = _BLACKBOARD.match(e.parts[0])
        if not m:
            stray.append(e)
            continue
        name, rid, _ = receipts.get(m["prefix"], (None, None, None))
        head = m["prefix"][: -len("_attempt_" + m["stamp"])]
        # a username with "_" in it: the receipt (written by Blackboard) says where it starts
        owner = student_id(rid if rid and head.endswith("_" + rid) else m["id"])
        if e.escaped:
            escaped.append((owner, e))
            continue
        if m["file"] is None and len(e.parts) == 1:
            continue  # the receipt itself
        stamp = datetime.datetime.strptime(m["stamp"], "%Y-%m-%d-%H-%M-%S")
        filename = e.parts[-1] if len(e.parts) > 1 else m["file"]
        claims.append(_Claim(owner, name, e, filename, (m["stamp"], e.order),
                             submitted_at=stamp.isoformat(timespec="seconds"), attempt=m["stamp"]))
    return claims, stray, escaped


def _gradescope(entries: list[_Entry], assignment: str) -> _Parsed:
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with jupyter (nbgrader's dependency)
        raise DiscoveryError("reading a Gradescope export needs PyYAML (pip install pyyaml)") from None
    meta_entry = next(e for e in entries if e.parts == ("submission_metadata.yml",) and e.depth == 0)
    try:
        meta = yaml.safe_load(meta_entry.read())
    except (_Unreadable, yaml.YAMLError) as e:
        raise DiscoveryError(f"{meta_entry.source}: not readable Gradescope metadata ({e})") from None
    if not isinstance(meta, dict):
        raise DiscoveryError(f"{meta_entry.source}: not Gradescope metadata (expected submission_<id>: entries)")
    claims, stray, escaped = [], [], []
    for e in entries:
        if e is meta_entry:
            continue
        info = meta.get(e.parts[0]) if len(e.parts) > 1 else None
        submitters = (info or {}).get(":submitters") or [] if isinstance(info, dict) else []
        people = [s for s in submitters if isinstance(s, dict)]
        if not people:
            stray.append(e)
            continue
        created = info.get(":created_at")
        created = created.isoformat() if isinstance(created, datetime.datetime) else (str(created) if created else None)
        for s in people:  # a group submission counts for each of its members
            owner = student_id(str(s.get(":sid") or s.get(":email") or s.get(":name") or e.parts[0]))
            if e.escaped:
                escaped.append((owner, e))
                continue
            claims.append(_Claim(owner, str(s[":name"]) if s.get(":name") else None, e, e.parts[-1],
                                 (created or "", e.order), submitted_at=created,
                                 email=str(s[":email"]) if s.get(":email") else None))
    return claims, stray, escaped


# -- all files of one student -> one submission --------------------------------------------

def _named_like(filename: str, assignment: str) -> bool:
    """``<A>.ipynb``, or Canvas's re-upload of it (``<A>-1.ipynb``)."""
    return re.fullmatch(rf"{re.escape(assignment)}(?:-\d+)?\.ipynb", filename, re.I) is not None


def _resolve(layout: str, student: str, claims: list[_Claim], assignment: str) -> Submission:
    notes, flags = [], []
    attempts = sorted({c.attempt for c in claims if c.attempt})
    if len(attempts) > 1:
        claims = [c for c in claims if c.attempt in (None, attempts[-1])]
        notes.append(f"{len(attempts)} attempts in the export; graded the latest ({attempts[-1]})")
    notebooks = [c for c in claims if c.filename.lower().endswith(".ipynb")]
    flags += [f"suspicious: {c.entry.source}: symbolic link refused" for c in claims
              if c.entry.error == "symbolic link refused"]
    person = next((c.name for c in claims if c.name), None)
    email = next((c.email for c in claims if c.email), None)
    if not notebooks:
        files = ", ".join(sorted({c.filename for c in claims}))[:300]
        sub = Submission(student, claims[0].entry.source, None, error=f"no notebook in the upload (files: {files}; "
                                                                        f"expected {assignment}.ipynb)")
    else:
        named = [c for c in notebooks if _named_like(c.filename, assignment)]
        pool = named or notebooks
        # a file named as an LMS names submissions (another student's, perhaps) comes last
        chosen = max(pool, key=lambda c: (c.entry.error is None, not _lms_named(c.filename), c.when))
        sub = _submission(student, chosen.entry)
        sub.submitted_at = chosen.submitted_at
        if len(notebooks) > 1:
            others = ", ".join(c.entry.source for c in notebooks if c is not chosen)
            flags.append(f"several files: {len(notebooks)} notebooks uploaded; graded {chosen.filename!r}")
            notes.append(f"{len(notebooks)} notebooks uploaded: graded {chosen.entry.source} "
                         f"({'named like the assignment' if named else 'the newest'}); ignored {others}")
        if not named:
            flags.append(f"misnamed: graded {chosen.filename!r}, expected {assignment + '.ipynb'!r}")
            notes.append(f"notebook is named {chosen.filename!r}, expected {assignment + '.ipynb'!r}; graded anyway")
    sub.name, sub.lms, sub.email = person, layout, email
    lates = [c.late for c in claims if c.late is not None]
    sub.late = any(lates) if lates else None
    sub.notes += notes
    sub.flags += flags
    return sub


def _lms_named(filename: str) -> bool:
    return any(rx.match(filename) for rx in (_MOODLE, _CANVAS, _BLACKBOARD))


def _ids_named_in(filename: str, assignment: str, known: dict) -> set[str]:
    """Student ids a file's own name claims: any LMS's naming, or ``<id>[_<A>].ipynb`` for a
    student of this export."""
    ids = set()
    for rx in (_MOODLE, _CANVAS):
        m = rx.match(filename)
        if m:
            ids.add(student_id(m["id"]))
    m = _BLACKBOARD.match(filename)
    if m:  # a username may hold "_": any student of this export whose name ends the head
        head = m["prefix"][: -len("_attempt_" + m["stamp"])]
        ids |= {k for k in known if head.endswith("_" + k)} or {student_id(m["id"])}
    if filename.lower().endswith(".ipynb"):
        stem = _student_from_file(PurePosixPath(filename), assignment)
        if stem in known:
            ids.add(stem)
    return ids


def _flag_claims_on_others(subs: list[Submission], by_student: dict[str, list[_Claim]], assignment: str) -> None:
    """A file in S's upload named as T's stays S's file (never T's notebook); both are flagged."""
    by_id = {s.student: s for s in subs}
    for s in subs:
        for c in by_student.get(s.student, []):
            # the student's own part of the path: the file name, and folders inside the upload
            names = [c.filename] + list(c.entry.parts[1:])
            targets = set().union(*(_ids_named_in(n, assignment, by_id) for n in names), c.also_reads_as) - {s.student}
            for target in sorted(targets):
                s.flags.append(f"suspicious: the upload has a file named as another student's ({target}): "
                               f"{c.entry.source}; used only as this student's file")
                if target in by_id:
                    by_id[target].flags.append(f"suspicious: another student's upload ({s.student}) has a file "
                                               f"named as yours ({c.entry.source}); it was not used for you")


# -- no LMS naming: the student id from the file or folder name -----------------------------

def _generic(entries: list[_Entry], assignment: str) -> list[Submission]:
    return [_submission(_student_in_zip(e.parts, assignment), e) for e in entries
            if e.name.endswith(".ipynb")]


def _student_in_zip(parts: tuple[str, ...], assignment: str) -> str:
    """``submitted/alice/A/A.ipynb`` or ``alice/A.ipynb`` (or ``alice.zip/A.ipynb``) -> alice;
    ``alice.ipynb`` -> alice."""
    parts = tuple(p[:-4] if p.lower().endswith(".zip") else p for p in parts[:-1]) + parts[-1:]
    stem = PurePosixPath(parts[-1]).stem
    if len(parts) >= 3 and parts[-2] == assignment:
        return student_id(parts[-3])
    if len(parts) >= 2 and stem == assignment:
        return student_id(parts[-2])
    return _student_from_file(PurePosixPath(parts[-1]), assignment)


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
            keep.flags.append(f"several files: {len(subs)} notebooks for this student; graded the newest")
        out.append(keep)
    return out
