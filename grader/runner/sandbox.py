"""How the sandboxed fork server is launched.

With bubblewrap (``bwrap``) the server sees only: ``/usr`` (and the ``/lib*``, ``/bin``
links), the Python prefix at ``/opt/python``, NumPy at ``/opt/site``, the two runner files
at ``/opt/runner``, a minimal ``/dev``, its own ``/proc`` and a scratch directory. No
``/work``, no ``/root``, no course directory, no network, its own pid/ipc/uts namespaces.

Each child is then boxed by the server (``child.py``) before student code runs: pid 2 of
its own pid namespace (pid 1 is a sleep(1) it cannot signal; killing that kills everything
the child started), its own mount, IPC, network and UTS namespaces, a fresh /proc, tmpfs of
limited size for scratch and /dev/shm, SysV IPC limits, the rest read-only, a user
namespace of its own in which it may create none, no capabilities, not dumpable.

Run as root (the usual container case), bwrap keeps only CAP_SETUID, CAP_SETGID and
CAP_SYS_ADMIN for the trusted server, and each child also switches to its own unprivileged
uid. A user namespace is deliberately not used for the server as root: it would map the
sandbox uid to host uid 0, for which the kernel does not enforce RLIMIT_NPROC.

Run as an ordinary user, bwrap uses a user namespace in which the server is uid 0 with
CAP_SYS_ADMIN (and CAP_SETFCAP), enough to box each child; children share that uid (the
calling user's outside), each in its own user namespace.

Either way, where the machine allows it each child also gets a cgroup of its own
(``cgroups.py``): memory with shared memory and tmpfs counted, an equal CPU weight.

Without bwrap the server is a plain subprocess with rlimits: ``isolation == "rlimits-only"``,
which callers must report loudly. As root its children still get their own uids, reach the
interpreter through the server's descriptors, and are denied the private paths (this
checkout, the course, the submissions) by an ACL entry; the server checks both before it
accepts work and the pool refuses (``IsolationError``) where it cannot hold them, always as
an ordinary user.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RUNNER_DIR = Path(__file__).resolve().parent
RUNNER_FILES = ("child.py", "protocol.py")

BWRAP = "bwrap"
RLIMITS_ONLY = "rlimits-only"

UID_BASE = 61000  # a pool's children run as uids base .. base + UID_COUNT - 1, base from claim_uid_block
UID_COUNT = 64
UID_BLOCKS = 16  # pools that can run at once on one machine (e.g. two `backprop grade` batches)
SANDBOX_GID = UID_BASE - 1  # supplementary group of the fallback's children; private paths deny it by ACL
SCRATCH = "/scratch"


class IsolationError(RuntimeError):
    """The sandbox cannot keep what it must from the children here: grading refuses to start."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-submission resource limits."""

    cpu_seconds: int = 60  # CPU time for the whole session (RLIMIT_CPU)
    memory_bytes: int = 1 << 30  # address space (RLIMIT_AS); with a cgroup also all its memory, shm and tmpfs included
    nproc: int = 32  # processes/threads of the sandbox uid (RLIMIT_NPROC)
    nofile: int = 64  # open files (RLIMIT_NOFILE)
    fsize_bytes: int = 16 << 20  # largest file the child may write (RLIMIT_FSIZE)
    scratch_bytes: int = 32 << 20  # size of the private scratch tmpfs
    shm_bytes: int = 16 << 20  # the child's /dev/shm tmpfs, and all its SysV shared memory
    output_bytes: int = 64 << 10  # student stdout+stderr kept by the parent; the rest is discarded
    timeout: float = 10.0  # wall-clock seconds per cell, per call, per module load
    message_bytes: int = 64 << 20  # largest protocol message accepted from the child

    def for_child(self) -> dict:
        keys = ("cpu_seconds", "memory_bytes", "nproc", "nofile", "fsize_bytes", "scratch_bytes", "shm_bytes")
        return {k: getattr(self, k) for k in keys}


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


_probe_cache: dict[tuple, bool] = {}


def _bwrap_works() -> bool:
    """bwrap can be installed but unusable (no user namespaces, seccomp'd container)."""
    key = (bwrap_path(), os.geteuid())
    if key not in _probe_cache:
        ok = False
        if key[0]:
            argv = _bwrap_argv() + ["/opt/python/bin/" + _python_name(), "-I", "-S", "-c", "pass"]
            try:
                ok = subprocess.run(argv, capture_output=True, timeout=20, env=_env()).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
        _probe_cache[key] = ok
    return _probe_cache[key]


ISOLATION_ENV = "BACKPROP_ISOLATION"  # "rlimits-only" forces the fallback (tests, CI), as on a machine without bwrap


def available_isolation() -> str:
    """``"bwrap"`` when a working bubblewrap is installed, else ``"rlimits-only"``.

    ``BACKPROP_ISOLATION=rlimits-only`` in the environment forces the fallback."""
    forced = os.environ.get(ISOLATION_ENV, "")
    if forced not in ("", RLIMITS_ONLY):
        raise ValueError(f"{ISOLATION_ENV}={forced!r}: the only value it accepts is {RLIMITS_ONLY!r}")
    if forced == RLIMITS_ONLY:
        return RLIMITS_ONLY
    return BWRAP if sys.platform.startswith("linux") and _bwrap_works() else RLIMITS_ONLY


def _python_name() -> str:
    return Path(os.path.realpath(sys.executable)).name


def _numpy_dirs() -> list[Path]:
    pkg = Path(np.__file__).resolve().parent
    dirs = [pkg]
    libs = pkg.parent / "numpy.libs"  # vendored OpenBLAS of manylinux wheels
    if libs.is_dir():
        dirs.append(libs)
    return dirs


def _env() -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "LANG": "C.UTF-8",
    }
    return env


def _bwrap_argv() -> list[str]:
    prefix = Path(os.path.realpath(sys.base_prefix))
    argv = ["bwrap", "--ro-bind", "/usr", "/usr"]
    for top in ("/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    # Directories bwrap creates implicitly are 0700 (root-only); the child runs as another uid.
    for d in ("/etc", "/opt", "/opt/site", "/opt/runner"):
        argv += ["--perms", "0755", "--dir", d]
    if os.path.exists("/etc/ld.so.cache"):
        argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    argv += ["--ro-bind", str(prefix), "/opt/python"]
    for d in _numpy_dirs():
        argv += ["--ro-bind", str(d), f"/opt/site/{d.name}"]
    for name in RUNNER_FILES:
        argv += ["--ro-bind", str(RUNNER_DIR / name), f"/opt/runner/{name}"]
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        # RUNPATH of a relocated interpreter (pyenv, python-build-standalone) points outside.
        "--setenv", "LD_LIBRARY_PATH", "/opt/python/lib",
        "--setenv", "HOME", SCRATCH,
        "--setenv", "TMPDIR", SCRATCH,
    ]
    if os.geteuid() == 0:
        argv += ["--dir", SCRATCH, "--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN"):
            argv += ["--cap-add", cap]
    else:
        # uid 0 of the sandbox's user namespace (the calling user outside): the server needs
        # CAP_SYS_ADMIN there to give each child its namespaces, and the IPC namespaces it
        # creates have their limits writable only by that uid 0 (children drop every capability).
        # CAP_SETFCAP: a child may map that uid 0 into a user namespace of its own.
        argv += ["--unshare-user", "--uid", "0", "--gid", "0", "--size", str(256 << 20), "--tmpfs", SCRATCH,
                 "--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETFCAP"]
    argv += ["--symlink", SCRATCH, "/tmp", "--chdir", SCRATCH]
    return argv


_BOOTSTRAP = "import sys; sys.path[:0] = {paths!r}; import child; child.zygote_main()"


@dataclasses.dataclass
class ServerCommand:
    argv: list[str]
    env: dict
    cwd: str | None
    isolation: str
    cleanup_dir: str | None = None


def claim_uid_block():
    """``(first uid, lock)`` of a block of sandbox uids that no other pool on this machine holds.

    Children are killed by uid and RLIMIT_NPROC counts per uid, so two pools sharing uids
    could kill or starve each other's children. The block is held by an exclusive flock on
    ``lock`` (an open file descriptor) until it is closed, or the process exits.
    """
    for k in range(UID_BLOCKS):
        path = os.path.join(tempfile.gettempdir(), f"backprop-sandbox-uids-{k}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return UID_BASE + k * UID_COUNT, fd
    raise RuntimeError(f"all {UID_BLOCKS} sandbox uid blocks are in use: too many grading runs at once")


def _zygote_config(ctrl_fd: int, scratch_root: str, box: bool, uid_base: int | None,
                   private: list[str] = ()) -> dict:
    """What the fork server needs to know; with a uid block (root) each child gets its own uid.

    ``box``: each child in its own pid, mount, IPC, network and UTS namespaces (bwrap).
    ``private``: paths a fallback child must not read (checked before the server accepts work)."""
    return {"ctrl_fd": ctrl_fd, "scratch_root": scratch_root, "box": box, "uid_base": uid_base,
            "uid_count": UID_COUNT, "sandbox_gid": SANDBOX_GID, "private": list(private)}


def default_private_paths() -> list[str]:
    """This installation's reference solutions, hidden suites and hidden checks: the whole
    checkout when it is one (its tests, a ``make demo`` course), else the packages themselves."""
    root = RUNNER_DIR.parents[1]
    if (root / "pyproject.toml").exists() and (root / "reference").is_dir():
        return [str(root)]
    return [str(root / name) for name in ("reference", "assignments", "grader/checks") if (root / name).exists()]


# POSIX ACL xattr (linux/posix_acl_xattr.h): version, then (tag, perm, id) entries sorted by tag, id
_ACL_VERSION, _ACL_UNDEFINED = 2, 0xFFFFFFFF
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_ACL_XATTR = "system.posix_acl_access"


def deny_sandbox_group(path: str) -> bool:
    """Add ``group:SANDBOX_GID:---`` to ``path``'s ACL (root, fallback only): the fallback's
    children, all in that group, are refused even where "other" may read. Idempotent; the
    entry is harmless once no child runs. False where the file system has no ACLs."""
    try:
        st = os.stat(path)
        try:
            raw = os.getxattr(path, _ACL_XATTR)
            entries = [struct.unpack_from("<HHI", raw, 4 + 8 * i) for i in range((len(raw) - 4) // 8)]
        except OSError:
            mode = st.st_mode
            entries = [(_USER_OBJ, (mode >> 6) & 7, _ACL_UNDEFINED), (_GROUP_OBJ, (mode >> 3) & 7, _ACL_UNDEFINED),
                       (_OTHER, mode & 7, _ACL_UNDEFINED)]
        entries = [e for e in entries if not (e[0] == _GROUP and e[2] == SANDBOX_GID) and e[0] != _MASK]
        entries.append((_GROUP, 0, SANDBOX_GID))
        mask = 0
        for tag, perm, _ in entries:
            if tag in (_USER, _GROUP_OBJ, _GROUP):
                mask |= perm
        entries.append((_MASK, mask, _ACL_UNDEFINED))
        entries.sort(key=lambda e: (e[0], e[2]))
        os.setxattr(path, _ACL_XATTR, struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries))
        return True
    except OSError:
        return False


def server_command(ctrl_fd: int, isolation: str | None = None, uid_base: int | None = None,
                   private: list[str] | tuple = ()) -> ServerCommand:
    """The command line of the fork server, passing it ``ctrl_fd`` (a unix socket).

    ``uid_base``: the first uid of this pool's block (``claim_uid_block``; root only).
    ``private``: more paths (course, submissions) the rlimits-only fallback must keep from
    children, beside ``default_private_paths``; with bwrap they are not mounted at all."""
    isolation = isolation or available_isolation()
    if isolation == BWRAP:
        config = _zygote_config(ctrl_fd, SCRATCH, box=True, uid_base=uid_base)
        boot = _BOOTSTRAP.format(paths=["/opt/runner", "/opt/site"])
        argv = _bwrap_argv() + ["/opt/python/bin/" + _python_name(), "-I", "-S", "-B", "-c", boot, json.dumps(config)]
        return ServerCommand(argv, _env(), None, BWRAP)
    scratch = tempfile.mkdtemp(prefix="backprop-runner-")
    os.chmod(scratch, 0o711)  # children may enter their own 0700 dir, not list the others
    private = list(dict.fromkeys(default_private_paths() + [os.path.abspath(p) for p in private]))
    if uid_base is not None:
        for path in private:
            deny_sandbox_group(path)  # the server's probe then checks that it holds
    config = _zygote_config(ctrl_fd, scratch, box=False, uid_base=uid_base, private=private)
    paths = [str(RUNNER_DIR), str(_numpy_dirs()[0].parent)]
    boot = _BOOTSTRAP.format(paths=paths)
    env = dict(_env(), HOME=scratch, TMPDIR=scratch)
    argv = [sys.executable, "-I", "-S", "-B", "-c", boot, json.dumps(config)]
    return ServerCommand(argv, env, scratch, RLIMITS_ONLY, cleanup_dir=scratch)
