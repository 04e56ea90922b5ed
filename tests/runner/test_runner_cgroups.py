"""A cgroup per child, where the machine allows one (cgroup v2 delegated to this user, or v1
as root): its memory bounded with shared memory and tmpfs counted, the same CPU weight as
every other child, and every process it started killed with it. Elsewhere the pool runs on
size-limited tmpfs and rlimits, and says so.

Real children through the real pool, in both isolations this machine offers. Nothing here
asserts a duration: the CPU test asserts on the cgroups' configuration and accounting, and
waits on observable state (a cell's marker, a cgroup's process list).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from grader.runner import ChildPool, Limits, available_isolation, cgroups

ROOT = os.geteuid() == 0
FORCED = os.environ.get("BACKPROP_ISOLATION") or None
MODES = [FORCED] if FORCED else (["bwrap", "rlimits-only"] if available_isolation() == "bwrap" else ["rlimits-only"])
if not ROOT:  # the fallback refuses to grade as an ordinary user
    MODES = [m for m in MODES if m != "rlimits-only"]

USABLE, WHY_NOT = cgroups.detect()
if USABLE is not None:
    USABLE.close()
needs_cgroups = pytest.mark.skipif(USABLE is None, reason=f"no usable cgroup here: {WHY_NOT}")
HANG = 120.0
MARK = "backprop-test-started"

MEMORY = 192 << 20  # the cgroup's bound; the tmpfs and IPC limits are far above it
BIG = Limits(timeout=60.0, memory_bytes=MEMORY, shm_bytes=4 << 30, scratch_bytes=4 << 30, nproc=32)

FILL_FILES = """
chunk = b"x" * (8 << 20)
for i in range(128):  # 1 GiB in files of 8 MiB (each under RLIMIT_FSIZE's reach is not the point)
    with open("{where}/fill-%d" % i, "wb") as f:
        f.write(chunk)
"""
FILL_SYSV = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
size = 64 << 20
for _ in range(16):  # 1 GiB in segments, each attached, filled and detached (no address space kept)
    ident = libc.shmget(0, ctypes.c_size_t(size), 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
    assert ident >= 0, ctypes.get_errno()
    addr = libc.shmat(ident, None, 0)
    assert addr not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
    ctypes.memset(addr, 1, size)
    libc.shmdt(ctypes.c_void_p(addr))
"""
ATTACKS = {"dev-shm": FILL_FILES.format(where="/dev/shm"), "scratch-tmpfs": FILL_FILES.format(where="/tmp"),
           "sysv-shm": FILL_SYSV}


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


def _wait_for(cond, what: str) -> None:
    deadline = time.monotonic() + HANG
    while not cond():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_the_pool_says_how_memory_and_cpu_are_bounded(mode):
    with ChildPool(workers=1, limits=Limits(timeout=10), isolation=mode) as pool:
        if USABLE is not None:
            assert pool.limits_mode == USABLE.mode and not pool.cgroups_problem
            with pool.session() as s:
                assert s.cgroup is not None and s.cgroup.memory_limit() == pool.limits.memory_bytes
        else:
            assert pool.limits_mode == ("tmpfs+rlimits" if mode == "bwrap" else "rlimits") and pool.cgroups_problem
    with ChildPool(workers=1, limits=Limits(timeout=10), isolation=mode, cgroups=False) as pool:
        assert pool.limits_mode == ("tmpfs+rlimits" if mode == "bwrap" else "rlimits")
        with pool.session() as s:
            assert s.cgroup is None and s.exec_cells([{"id": "c", "source": "x = 1"}])[0].status == "ok"


@needs_cgroups
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_filling_shared_memory_or_tmpfs_past_the_limit_is_killed_at_the_limit(mode, attack):
    if mode == "rlimits-only" and attack == "scratch-tmpfs":
        pytest.skip("rlimits-only: the scratch directory is on disk (its page cache is reclaimed, not a tmpfs)")
    with ChildPool(workers=2, limits=BIG, isolation=mode) as pool:
        assert pool.limits_mode == USABLE.mode
        with pool.session() as s:
            (cell,) = s.exec_cells([{"id": "fill", "source": ATTACKS[attack]}])
            assert cell.status == "died", cell
            assert f"out of memory, killed at its memory limit of {MEMORY >> 20} MiB" in cell.error.message
            assert s.cgroup.oom_kills() >= 1
            directory = s.cgroup.memory_dir
        assert not os.path.exists(directory)  # the session's cgroup went with it
        with pool.session() as s:  # the parent and the pool go on
            assert s.exec_cells([{"id": "c", "source": "x = 1"}])[0].status == "ok"


def test_without_cgroups_the_box_bounds_shared_memory_by_its_tmpfs():
    if "bwrap" not in MODES:
        pytest.skip("rlimits-only without cgroups: /dev/shm is the host's (README: what each mode holds)")
    limits = Limits(timeout=30.0, shm_bytes=16 << 20)
    with ChildPool(workers=1, limits=limits, isolation="bwrap", cgroups=False) as pool:
        with pool.session() as s:
            (cell,) = s.exec_cells([{"id": "fill", "source": FILL_FILES.format(where="/dev/shm")}])
            assert cell.status == "error" and "No space left on device" in cell.error.message, cell


HOG = f"""
import os
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        while True:
            pass
    kids.append(pid)
print({MARK!r})
"""


@needs_cgroups
def test_a_cpu_hog_and_all_it_forks_share_one_weight_equal_to_every_other_childs(mode):
    with ChildPool(workers=2, limits=Limits(timeout=60.0, nproc=32), isolation=mode) as pool:
        with pool.session() as hog, pool.session() as honest:
            assert hog.exec_cells([{"id": "hog", "source": HOG}])[0].status == "ok"
            assert honest.exec_cells([{"id": "c", "source": "x = sum(range(1000))"}])[0].status == "ok"
            # configuration: siblings of one pool, the same weight
            assert hog.cgroup.cpu_weight() == honest.cgroup.cpu_weight() == (
                cgroups.CPU_WEIGHT_V2 if USABLE.version == 2 else cgroups.CPU_SHARES_V1)
            for a, b in zip(hog.cgroup.dirs, honest.cgroup.dirs):
                assert os.path.dirname(a) == os.path.dirname(b) and a != b
            # accounting: the child and its three busy forks are all in its cgroup, and their CPU
            # time is charged to it (so the scheduler weighs them as one child)
            _wait_for(lambda: len(hog.cgroup.pids()) == 4, "the hog and its forks in its cgroup")
            pids = hog.cgroup.pids()
            assert not set(pids) & set(honest.cgroup.pids())
            usage = hog.cgroup.cpu_usage_ns()
            if usage is None:
                pytest.skip("no CPU accounting in this hierarchy (cgroup v1 without cpuacct)")
            _wait_for(lambda: hog.cgroup.cpu_usage_ns() > 1_000_000_000, "a CPU second charged to the hog")
            tick = os.sysconf("SC_CLK_TCK")
            used = sum(sum(int(v) for v in open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[11:13])
                       for p in pids if _alive(p)) / tick
            assert hog.cgroup.cpu_usage_ns() / 1e9 >= used - 4 / tick  # all of it (a clock tick's rounding each)
            assert honest.cgroup.cpu_usage_ns() < hog.cgroup.cpu_usage_ns()
            hog_dirs = hog.cgroup.dirs
        for p in pids:
            _wait_for(lambda p=p: not _alive(p), f"hog process {p} killed with its session")
        assert not any(os.path.exists(d) for d in hog_dirs)


DAEMON = f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3600)  # the survivor: reparented, in a session of its own
    os._exit(0)
os.wait()
print({MARK!r})
"""


@needs_cgroups
def test_a_daemonized_survivor_is_killed_with_its_session(mode):
    with ChildPool(workers=1, limits=Limits(timeout=30.0), isolation=mode) as pool:
        s = pool.session()
        assert s.exec_cells([{"id": "daemon", "source": DAEMON}])[0].status == "ok"
        _wait_for(lambda: MARK in s.output().text, "the cell's marker read by the drain thread")
        _wait_for(lambda: len(s.cgroup.pids()) == 2, "the child and its daemon in its cgroup")
        pids, directory = s.cgroup.pids(), s.cgroup.memory_dir
        s.close()
        for p in pids:
            _wait_for(lambda p=p: not _alive(p), f"process {p} of the closed session killed")
        assert not os.path.exists(directory)
        with pool.session() as s:
            assert s.exec_cells([{"id": "c", "source": "x = 1"}])[0].status == "ok"


@needs_cgroups
def test_killing_a_cgroup_kills_a_daemon_that_left_its_process_tree():
    """The mechanism alone, without the box's pid namespace: a process joins a child cgroup,
    leaves a daemon (double fork, setsid) and exits; removing the cgroup kills the daemon."""
    found, why = cgroups.detect()
    assert found is not None, why
    try:
        cg = found.child("daemon-test", 256 << 20)
        fds = cg.open_procs()
        code = ("import os, sys, time\n"
                "for fd in map(int, sys.argv[1:]):\n    os.write(fd, b'0')\n"
                "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(3600)\n"
                "    os._exit(0)\nos.wait()\n")
        subprocess.run([sys.executable, "-c", code, *map(str, fds)], pass_fds=fds, check=True)
        for fd in fds:
            os.close(fd)
        (daemon,) = cg.pids()  # the process it started is gone, its daemon is not
        assert _alive(daemon)
        cg.remove()
        _wait_for(lambda: not _alive(daemon), "the daemon killed with its cgroup")
        assert not any(os.path.exists(d) for d in cg.dirs)
    finally:
        found.close()
