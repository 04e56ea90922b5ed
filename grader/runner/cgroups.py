"""One control group per child: its memory bounded (shared memory and tmpfs included, which
the kernel charges to the cgroup of whoever touched the pages), an equal CPU weight, and
every process it starts killed with it.

Where this process may use cgroups (``detect``):
  - cgroup v2, where this process's cgroup is writable (delegated to the user by systemd,
    e.g. under ``systemd-run --user --scope -p Delegate=yes``, or root) and has the memory
    and cpu controllers: the children's cgroups go under it. v2 allows processes only in
    leaves, so this process first moves into a leaf of its own (``supervisor``); that only
    works when it is the cgroup's only process, else v2 is not used.
  - cgroup v1, as root, with the memory and cpu hierarchies mounted and writable: a
    directory per pool under this process's own cgroup in each, one per child below it.
Elsewhere the pool runs without (size-limited tmpfs and rlimits) and says so.

The parent creates a child's cgroup before the child exists and hands the fork server an
open ``cgroup.procs`` per hierarchy; the child writes "0" (itself) into each before it does
anything else, so everything it ever runs is inside. Nothing in the sandbox sees /sys.
"""
from __future__ import annotations

import errno
import os
import secrets
import signal
import threading
import time

CGROUPS_ENV = "BACKPROP_CGROUPS"  # "off": never use cgroups (tests, the fallback's CI run)
CPU_SHARES_V1 = 1024  # every child the same weight: a hog's whole process tree gets one share
CPU_WEIGHT_V2 = 100
KILL_ROUNDS = 200  # kill whatever is listed until nothing is; a fork bomb cannot outrun SIGKILL that long
POOL_PREFIX = "backprop-"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """``(fstype, mount point, root in the hierarchy, super options)`` of cgroup file systems."""
    out = []
    try:
        lines = _read("/proc/self/mountinfo").splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        point = fields[4].replace("\\040", " ")
        out.append((tail[0], point, fields[3], set(tail[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """``{controller or "": path}`` from /proc/self/cgroup ("" is the v2 hierarchy)."""
    out = {}
    for line in _read("/proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


def _join(point: str, root: str, path: str) -> str:
    rel = path[len(root):] if root != "/" and path.startswith(root) else path
    return os.path.join(point, rel.lstrip("/"))


def _pids(directory: str) -> list[int]:
    try:
        return [int(p) for p in _read(os.path.join(directory, "cgroup.procs")).split()]
    except (OSError, ValueError):
        return []


def _kill_listed(dirs: list[str]) -> bool:
    """SIGKILL every process listed in ``dirs`` until none is; False if some never went."""
    for _ in range(KILL_ROUNDS):
        pids = {p for d in dirs for p in _pids(d)}
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.001)
    return False


def _rmdir(directory: str) -> None:
    for _ in range(50):  # an exiting task may keep it busy a moment
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return
        time.sleep(0.002)


class ChildCgroup:
    """One child's cgroup: a directory per hierarchy (``roles``: controller -> its directory)."""

    def __init__(self, version: int, roles: dict[str, str], memory_bytes: int):
        self.version, self.roles, self.memory_bytes = version, roles, memory_bytes
        self.dirs = list(dict.fromkeys(roles.values()))
        self.removed = False

    @property
    def memory_dir(self) -> str:
        return self.roles["memory"]

    def open_procs(self) -> list[int]:
        """Write-only ``cgroup.procs`` of each hierarchy, for the child to join them with "0"."""
        fds = []
        try:
            for d in self.dirs:
                fds.append(os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        return fds

    def pids(self) -> list[int]:
        return _pids(self.memory_dir)

    def oom_kills(self) -> int:
        """How many of its processes the kernel killed at its memory limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in _read(os.path.join(self.memory_dir, name)).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def cpu_weight(self) -> int:
        """Its CPU weight (v1 ``cpu.shares``, v2 ``cpu.weight``)."""
        name = "cpu.weight" if self.version == 2 else "cpu.shares"
        return int(_read(os.path.join(self.roles["cpu"], name)))

    def cpu_usage_ns(self) -> int | None:
        """CPU time its processes used, where the kernel accounts it (v2; v1 with cpuacct)."""
        if self.version == 2:
            for line in _read(os.path.join(self.roles["cpu"], "cpu.stat")).splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
            return None
        if "cpuacct" not in self.roles:
            return None
        return int(_read(os.path.join(self.roles["cpuacct"], "cpuacct.usage")))

    def memory_limit(self) -> int:
        name = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        return int(_read(os.path.join(self.memory_dir, name)))

    def kill(self) -> bool:
        """Kill every process in it (daemons, double forks, whatever left its session)."""
        if self.version == 2:
            try:
                _write(os.path.join(self.memory_dir, "cgroup.kill"), "1")
            except OSError:
                pass  # before Linux 5.14: killed one by one
        return _kill_listed(self.dirs)

    def remove(self) -> None:
        if self.removed:
            return
        self.removed = True
        self.kill()
        for d in self.dirs:
            _rmdir(d)


class Cgroups:
    """This pool's cgroups: a directory per hierarchy, one child cgroup per session."""

    def __init__(self, version: int, bases: dict[str, str], supervisor: tuple | None = None):
        self.version = version
        self.bases = bases  # controller -> this pool's directory in its hierarchy (v2: one for all)
        self._supervisor = supervisor  # v2: (the leaf this process moved to, where it came from)
        self._children: list[ChildCgroup] = []  # every child cgroup made here (only these are removed)
        self._lock = threading.Lock()  # sessions start from several threads

    @property
    def mode(self) -> str:
        return f"cgroup v{self.version}"

    def weigh_pool(self, workers: int) -> None:
        """The pool's children together weigh as much as ``workers`` ordinary processes, as
        they would without cgroups (v1: the pool's own directory; v2's is its delegator's)."""
        if self.version == 1:
            _write(os.path.join(self.bases["cpu"], "cpu.shares"), str(CPU_SHARES_V1 * max(1, workers)))

    def child(self, name: str, memory_bytes: int) -> ChildCgroup:
        """A new cgroup ``name`` (unique in this pool) for one child."""
        roles = {c: os.path.join(b, name) for c, b in self.bases.items()}
        made = []
        try:
            for d in dict.fromkeys(roles.values()):
                os.mkdir(d)
                made.append(d)
            memory, cpu = roles["memory"], roles["cpu"]
            if self.version == 2:
                _write(os.path.join(memory, "memory.max"), str(memory_bytes))
                for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):  # the whole child at once
                    if os.path.exists(os.path.join(memory, name)):
                        _write(os.path.join(memory, name), value)
                _write(os.path.join(cpu, "cpu.weight"), str(CPU_WEIGHT_V2))
            else:
                _write(os.path.join(memory, "memory.limit_in_bytes"), str(memory_bytes))
                memsw = os.path.join(memory, "memory.memsw.limit_in_bytes")
                if os.path.exists(memsw):  # no swap either: memory + swap under the same bound
                    _write(memsw, str(memory_bytes))
                _write(os.path.join(cpu, "cpu.shares"), str(CPU_SHARES_V1))
        except OSError:
            for d in made:
                _rmdir(d)
            raise
        child = ChildCgroup(self.version, roles, memory_bytes)
        with self._lock:
            self._children = [c for c in self._children if not c.removed] + [child]
        return child

    def close(self) -> None:
        with self._lock:
            left, self._children = self._children, []
        for child in left:  # what a session left (its close kills and removes its own)
            child.remove()
        if self._supervisor is not None:
            leaf, home = self._supervisor
            try:
                _write(os.path.join(home, "cgroup.subtree_control"), "-memory -cpu")
                _write(os.path.join(home, "cgroup.procs"), "0")
                _rmdir(leaf)
            except OSError:
                pass  # stays in its leaf, which goes with this process's scope
            return
        for base in dict.fromkeys(self.bases.values()):
            _rmdir(base)


def _sweep_stale(parent: str) -> None:
    """Remove (empty) pool directories left by a process that died without closing its pool."""
    try:
        entries = [e for e in os.scandir(parent) if e.is_dir() and e.name.startswith(POOL_PREFIX)]
    except OSError:
        return
    for e in entries:
        try:
            pid = int(e.name[len(POOL_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if os.path.exists(f"/proc/{pid}"):
            continue
        for child in os.scandir(e.path):
            if child.is_dir():
                ChildCgroup(1, {"memory": child.path}, 0).remove()
        _rmdir(e.path)


def _detect_v2(mounts, own) -> tuple[Cgroups | None, str]:
    v2 = [(point, root) for fstype, point, root, _ in mounts if fstype == "cgroup2"]
    if not v2 or "" not in own:
        return None, "no cgroup v2 hierarchy"
    point, root = v2[0]
    home = _join(point, root, own[""])
    try:
        available = set(_read(os.path.join(home, "cgroup.controllers")).split())
    except OSError:
        return None, "cgroup v2: this process's cgroup is not visible"
    if not {"memory", "cpu"} <= available:
        return None, "cgroup v2 without the memory and cpu controllers here"
    if not (os.access(os.path.join(home, "cgroup.procs"), os.W_OK)
            and os.access(os.path.join(home, "cgroup.subtree_control"), os.W_OK)):
        return None, "cgroup v2: this process's cgroup is not delegated to it"
    if _pids(home) != [os.getpid()]:
        return None, ("cgroup v2: this process shares its cgroup with others (run it under "
                      "`systemd-run --user --scope -p Delegate=yes`)")
    leaf = os.path.join(home, "supervisor")
    try:
        if not os.path.isdir(leaf):
            os.mkdir(leaf)
        _write(os.path.join(leaf, "cgroup.procs"), "0")
    except OSError as exc:
        return None, f"cgroup v2: cannot move into a leaf ({exc.strerror})"
    try:
        _write(os.path.join(home, "cgroup.subtree_control"), "+memory +cpu")
    except OSError as exc:
        try:
            _write(os.path.join(home, "cgroup.procs"), "0")
            _rmdir(leaf)
        except OSError:
            pass
        return None, f"cgroup v2: cannot enable memory and cpu ({exc.strerror})"
    return Cgroups(2, {"memory": home, "cpu": home}, supervisor=(leaf, home)), ""


def _detect_v1(mounts, own) -> tuple[Cgroups | None, str]:
    if os.geteuid() != 0:
        return None, "cgroup v1 needs root"
    parents: dict[str, str] = {}
    for controller in ("memory", "cpu", "cpuacct"):
        found = [(point, root) for fstype, point, root, opts in mounts if fstype == "cgroup" and controller in opts]
        if not found or controller not in own:
            if controller == "cpuacct":
                break  # accounting only
            return None, f"no cgroup v1 {controller} hierarchy"
        point, root = found[0]
        parent = _join(point, root, own[controller])
        if not os.access(parent, os.W_OK):
            return None, f"cgroup v1 {controller}: {parent} is not writable"
        parents[controller] = parent  # co-mounted controllers (cpu,cpuacct) share one
    name = f"{POOL_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    made: list[str] = []
    try:
        for parent in dict.fromkeys(parents.values()):
            _sweep_stale(parent)
            os.mkdir(os.path.join(parent, name))
            made.append(os.path.join(parent, name))
    except OSError as exc:
        for d in made:
            _rmdir(d)
        return None, f"cgroup v1: cannot create {name} ({exc.strerror})"
    return Cgroups(1, {c: os.path.join(p, name) for c, p in parents.items()}), ""


def detect() -> tuple[Cgroups | None, str]:
    """This pool's cgroups, or ``(None, why not)``; ``BACKPROP_CGROUPS=off`` turns them off."""
    setting = os.environ.get(CGROUPS_ENV, "")
    if setting not in ("", "off", "auto"):
        raise ValueError(f"{CGROUPS_ENV}={setting!r}: it accepts 'off' or 'auto'")
    if setting == "off":
        return None, f"turned off ({CGROUPS_ENV}=off)"
    try:
        mounts, own = _mounts(), _own_paths()
    except (OSError, ValueError):
        return None, "no cgroups here"
    found, why2 = _detect_v2(mounts, own)
    if found is not None:
        return found, ""
    found, why1 = _detect_v1(mounts, own)
    if found is not None:
        return found, ""
    return None, f"{why2}; {why1}"
