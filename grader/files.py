"""Writing output files so that a reader, or a batch killed mid-write, sees the old file or
the new one, never half of one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path, text: str, *, mode: int | None = None, fsync: bool = False) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    ``mode``: the file's permissions (default: ``mkstemp``'s 0600); ``fsync``: flush to
    disk before the rename (records a resumed batch relies on).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_STEM_KEEP = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._@-")
_STEM_MAX = 80


def file_stem(student_id: str) -> str:
    """The file name stem of a student's per-student files (``submissions/<stem>.json``,
    ``feedback/<stem>.md|html``): injective, stable and safe on every file system.

    An id made only of lower-case letters, digits and ``._@-`` (not starting with a dot,
    not too long) is its own stem. Any other id keeps its safe characters (the rest
    become ``_``) and gets ``~`` plus a hash of the whole id: ``~`` never occurs in an
    unchanged id, so ``x+y`` (``x_y~<hash>``) and ``x_y`` (``x_y``) never share a file,
    nor do ``Alice`` and ``alice`` on a case-insensitive file system.
    """
    sid = str(student_id)
    if sid and len(sid) <= _STEM_MAX and not sid.startswith(".") and set(sid) <= _STEM_KEEP:
        return sid
    import hashlib

    kept = "".join(c if c in _STEM_KEEP else "_" for c in sid.lower()).lstrip(".")[:_STEM_MAX]
    return f"{kept}~{hashlib.sha256(sid.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
