"""Hidden cases fresh per student and per attempt, and reproducible.

A course has a secret: 32 random bytes, as hex, in ``<course>/.backprop/secret`` (a 0600 file
in a 0700 folder), created once by ``backprop generate`` and never rewritten. It stays out of
``release/`` and out of every grading child: bubblewrap mounts no course folder, the rlimits-only
fallback denies the course folder to its children by uid and ACL (``ChildPool(private=...)``),
and a child's environment is built fresh, never inherited.

A submission's key is ``HMAC-SHA256(secret, assignment, student, sha256 of the notebook)``, cut
to 63 bits; every hidden seed ``s`` of test ``t`` then becomes ``hidden.mixed_seed(assignment, t,
key, s)`` (``grader.checks.hidden.seeded``: the same mixing the audit's seed sets use). So two
students, or two versions of one notebook, face other cases; the same file graded again faces
the same ones. The key is in the record (``hidden_seed``), and ``backprop grade --hidden-seed
KEY`` grades with a recorded key, wherever the file now lives and whatever its name.

Without a secret (a course generated before secrets existed, a plain folder) every submission
gets the suite's own seeds, the same for everyone, as before: grading says so in a warning.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_DIR = ".backprop"
SECRET_FILE = "secret"
SECRET_BYTES = 32
KEY_BITS = 63  # a key fits a signed 64-bit integer (JSON readers, SQLite)

NO_SECRET = "WARNING: no course secret"  # how the warning starts, among a summary's messages
NO_SECRET_WARNING = (NO_SECRET + " ({path}): every student faced the suite's own hidden cases, "
                     "the same for all (a student who saw them in feedback can hard-code the answers). "
                     "Run `backprop generate` on this course to create one; later gradings then give each "
                     "student and each version of a notebook their own cases.")


class SecretError(Exception):
    """The course secret exists but cannot be used (unreadable, malformed): a TA-facing message."""


def secret_path(course: Path | str) -> Path:
    return Path(course) / SECRET_DIR / SECRET_FILE


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def ensure_secret(course: Path | str) -> Path:
    """The course's secret, created when missing (never replaced: records keep their meaning)."""
    path = secret_path(course)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, new_secret().hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never over a secret another process created meanwhile
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path


def read_secret(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
        secret = bytes.fromhex(text)
    except (OSError, ValueError) as e:
        raise SecretError(f"the course secret {path} cannot be read ({type(e).__name__}: {e})") from None
    if len(secret) < 16:
        raise SecretError(f"the course secret {path} is too short ({len(secret)} bytes; 16 at least)")
    return secret


def load_secret(course: Path | str | None) -> bytes | None:
    """The course's secret, or None when it has none."""
    if course is None:
        return None
    path = secret_path(course)
    if not path.exists():
        return None
    return read_secret(path)


def submission_key(secret: bytes, assignment: str, student: str, sha256: str) -> int:
    """The key of one submission: unpredictable without the secret, the same on every regrade."""
    msg = "\0".join((assignment, student, sha256)).encode("utf-8", "surrogatepass")
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "little") >> (64 - KEY_BITS)


@dataclass(frozen=True)
class Seeding:
    """Where a batch's hidden seeds come from: the course secret, one given key, or none."""

    secret: bytes | None = None
    key: int | None = None            # --hidden-seed: this key for every submission
    where: str = ""                   # the secret's path, for messages

    def for_submission(self, assignment: str, student: str, sha256: str) -> dict:
        """The record's ``hidden_seed``: ``{"key", "from"}``; key None = the suite's own seeds."""
        if self.key is not None:
            return {"key": self.key, "from": "given"}
        if self.secret is not None:
            return {"key": submission_key(self.secret, assignment, student, sha256), "from": "course secret"}
        return {"key": None, "from": "suite"}

    @property
    def warning(self) -> str | None:
        if self.secret is None and self.key is None:
            return NO_SECRET_WARNING.format(path=self.where or f"<course>/{SECRET_DIR}/{SECRET_FILE}")
        return None


def seeding(course: Path | str | None, key: int | None = None, secret: bytes | None = None) -> Seeding:
    """A batch's seeding: ``key`` when given, else ``secret``, else the course's secret."""
    where = str(secret_path(course)) if course is not None else ""
    if key is not None:
        if not 0 <= key < 2 ** KEY_BITS:
            raise SecretError(f"a hidden seed key is a whole number from 0 to 2**{KEY_BITS} - 1, not {key}")
        return Seeding(key=key, where=where)
    return Seeding(secret=secret if secret is not None else load_secret(course), where=where)
