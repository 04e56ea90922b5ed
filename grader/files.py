"""Writing output files so that a reader, or a batch killed mid-write, sees the old file or
the new one, never half of one."""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path


class WriteError(OSError):
    """An output file could not be written (disk full, no permission): ``path`` and why.

    The CLI prints it as one line; everything written before it stays valid, so rerunning
    the same command resumes."""

    def __init__(self, path, cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))
        self.path, self.cause = Path(path), cause

    def __str__(self) -> str:
        return f"could not write {self.path}: {self.cause.strerror or self.cause}"


_umask_lock = threading.Lock()


def umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` sets it,
    which would race with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def write_atomic(path, text: str, *, mode: int | None = None, fsync: bool = False) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    ``mode``: the file's permissions (default: ``0o666 & ~umask``, as ``open`` would create
    it; ``mkstemp`` alone would force 0600); ``fsync``: flush to disk before the rename
    (records a resumed batch relies on). Raises ``WriteError`` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise WriteError(path, e) from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(path, e) from e
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
