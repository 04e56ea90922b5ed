"""Attacks of one student's child on another's, on the fork server and on the parent.

Real children through the real pool, in every mode this machine offers: bwrap (each child
in its own pid/IPC/mount/network/UTS namespaces) and the rlimits-only fallback. What the
fallback cannot hold (it has no namespaces) is skipped with the reason; README's
"Security" section lists the same table.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from grader.runner import ChildPool, Limits, available_isolation

ROOT = os.geteuid() == 0
MODES = ["bwrap", "rlimits-only"] if available_isolation() == "bwrap" else ["rlimits-only"]

LIMITS = Limits(cpu_seconds=10, memory_bytes=512 << 20, nproc=16, nofile=64, fsize_bytes=1 << 20,
                scratch_bytes=8 << 20, shm_bytes=4 << 20, output_bytes=4096, timeout=5.0)

PROBE = "def get(ns, name):\n    return ns.get(name)\n"

NO_NAMESPACES = "rlimits-only: no IPC namespace or private /dev/shm, shared memory is the host's"


def skip_unless(mode: str, *, fallback_root: bool = True, fallback_reason: str = ""):
    """Skip where the mode does not claim to stop the attack (the fallback as an ordinary user
    refuses to start, see ``pool``)."""
    if mode == "rlimits-only" and not fallback_root:
        pytest.skip(fallback_reason)


@pytest.fixture(scope="module", params=MODES)
def pool(request):
    if request.param == "rlimits-only" and not ROOT:
        pytest.skip("rlimits-only as an ordinary user refuses to grade (children would share its uid)")
    with ChildPool(workers=3, limits=LIMITS, isolation=request.param) as pool:
        assert pool.isolation == request.param
        yield pool


def run(session, *sources: str) -> list[str]:
    if "probe" not in getattr(session, "_loaded", ()):
        assert session.load_module("probe", PROBE).ok
        session._loaded = ("probe",)
    cells = session.exec_cells([{"id": f"c{i}", "source": s} for i, s in enumerate(sources)])
    return [c.status if c.status == "ok" else f"{c.status}: {c.error}" for c in cells]


def get(session, name):
    out = session.call("probe", "get", name)
    assert out.ok, out.error
    return out.value


def assert_grades(pool):
    with pool.session() as s:
        assert run(s, "y = sum(range(10))") == ["ok"]
        assert get(s, "y") == 45


SYSV = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmat.restype = ctypes.c_void_p
IPC_CREAT, IPC_PRIVATE = 0o1000, 0
"""


def test_shared_memory_left_by_one_child_is_invisible_to_later_children(pool):
    skip_unless(pool.isolation)
    key = random.randrange(1 << 20, 1 << 30)
    plant = SYSV + (
        f"shmid = libc.shmget({key}, 4096, IPC_CREAT | 0o666)\n"
        "assert shmid >= 0, os.strerror(ctypes.get_errno())\n"
        "addr = libc.shmat(shmid, None, 0)\n"
        "ctypes.memmove(addr, b'def backward(): ...', 19)\n"
        "for d in ('/dev/shm', '/tmp', os.getcwd()):\n"
        "    with open(os.path.join(d, 'answers-%d' % " + str(key) + "), 'w') as f:\n"
        "        f.write('def backward(): ...')\n"
    )
    look = SYSV + (
        "found = {}\n"
        f"shmid = libc.shmget({key}, 0, 0)\n"
        "found['sysv'] = 'FOUND' if shmid >= 0 else os.strerror(ctypes.get_errno())\n"
        "for d in ('/dev/shm', '/tmp', os.getcwd(), '..'):\n"
        "    try:\n"
        "        found[d] = open(os.path.join(d, 'answers-%d' % " + str(key) + ")).read()\n"
        "    except OSError as exc:\n"
        "        found[d] = type(exc).__name__\n"
    )
    with pool.session() as planter:
        assert run(planter, plant) == ["ok"]
    with pool.session() as later:
        assert run(later, look) == ["ok"]
        found = get(later, "found")
    assert found["sysv"] != "FOUND" and all("backward" not in v for v in found.values()), found


def test_shared_memory_and_tmpfs_beyond_the_limit_fail_in_the_child(pool):
    skip_unless(pool.isolation, fallback_root=False, fallback_reason=NO_NAMESPACES)
    limit = LIMITS.shm_bytes
    bomb = SYSV + (
        "r = {}\n"
        f"r['one_too_big'] = libc.shmget(IPC_PRIVATE, {2 * limit}, IPC_CREAT | 0o600) >= 0\n"
        "made = 0\n"
        "for _ in range(64):  # never attached: RLIMIT_AS does not see them, only the IPC limits do\n"
        f"    if libc.shmget(IPC_PRIVATE, {limit // 4}, IPC_CREAT | 0o600) < 0:\n"
        "        r['sysv_error'] = os.strerror(ctypes.get_errno())\n"
        "        break\n"
        "    made += 1\n"
        f"r['sysv_bytes'] = made * {limit // 4}\n"
        "def fill(directory):\n"
        "    total = 0\n"
        "    try:\n"
        "        for i in range(1000):  # files of 512 KiB, under RLIMIT_FSIZE, until the tmpfs is full\n"
        "            with open(os.path.join(directory, 'f%d' % i), 'wb') as f:\n"
        "                for _ in range(8):\n"
        "                    f.write(b'x' * 65536)\n"
        "                    total += 65536\n"
        "    except OSError as exc:\n"
        "        return total, os.strerror(exc.errno)\n"
        "    return total, None\n"
        "r['devshm'] = fill('/dev/shm')\n"
        "r['scratch'] = fill('.')\n"
    )
    with pool.session() as s:
        assert run(s, bomb) == ["ok"]
        r = get(s, "r")
    assert r["one_too_big"] is False
    assert r["sysv_bytes"] <= limit and r["sysv_error"] == os.strerror(28), r  # ENOSPC
    assert r["devshm"][0] <= limit and r["devshm"][1] == os.strerror(28), r
    assert r["scratch"][0] <= LIMITS.scratch_bytes and r["scratch"][1] == os.strerror(28), r
    assert_grades(pool)


def host_processes_named(marker: str) -> list[int]:
    pids = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/comm") as f:
                if f.read().strip() == marker:
                    pids.append(int(p))
        except (OSError, ValueError):
            pass
    return pids


def test_a_daemon_dies_with_its_session_and_cannot_kill_other_children(pool):
    skip_unless(pool.isolation)
    marker = "bpd%010x" % random.randrange(1 << 40)
    # setsid + double fork, renamed so the test can find it on the host; it kills every
    # process it can see, except its own submission's, over and over
    daemon = (
        "import ctypes, os, signal, time\n"
        "mine = os.getsid(0)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        ctypes.CDLL(None).prctl(15, {marker.encode()!r}, 0, 0, 0)\n"
        "        while True:\n"
        "            for p in os.listdir('/proc'):\n"
        "                if p.isdigit() and int(p) != os.getpid():\n"
        "                    try:\n"
        "                        if os.getsid(int(p)) != mine:\n"
        "                            os.kill(int(p), signal.SIGKILL)\n"
        "                    except OSError:\n"
        "                        pass\n"
        "            time.sleep(0.01)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
    )
    before = pool._server
    with pool.session() as other:
        assert run(other, "x = 1") == ["ok"]
        with pool.session() as attacker:
            assert run(attacker, daemon) == ["ok"]
            for _ in range(200):  # the daemon is running (seen from the host) before we go on
                if host_processes_named(marker):
                    break
                time.sleep(0.05)
            assert host_processes_named(marker), "the daemon never started"
            # a sibling running at the same time keeps working
            assert run(other, "import time\nfor _ in range(5):\n    time.sleep(0.1)\nx = 2") == ["ok"]
        for _ in range(200):
            if not host_processes_named(marker):
                break
            time.sleep(0.05)
        assert host_processes_named(marker) == [], "the daemon outlived its submission"
        assert run(other, "x = 3") == ["ok"] and get(other, "x") == 3
    with pool.session() as later:
        assert run(later, "import time\ntime.sleep(0.3)\nz = 4") == ["ok"]
    assert pool._server is before and before.proc.poll() is None  # the fork server was never killed


THIEF = """
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)

class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

def vm_read(pid, addr, n):
    buf = ctypes.create_string_buffer(n)
    local, remote = iovec(ctypes.addressof(buf), n), iovec(addr, n)
    got = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    return buf.raw if got == n else os.strerror(ctypes.get_errno())

def mem_read(pid, addr, n):
    try:
        with open('/proc/%d/mem' % pid, 'rb') as f:
            f.seek(addr)
            return f.read(n)
    except (OSError, ValueError, OverflowError) as exc:
        return type(exc).__name__

me = os.getpid()
mine = bytearray(b'own bytes')
own = ctypes.addressof((ctypes.c_char * 9).from_buffer(mine))
selfcheck = str(vm_read(me, own, 9))  # the primitive works (/proc/self/mem is root's: non-dumpable)
targets = {int(p) for p in os.listdir('/proc') if p.isdigit()} | {VICTIM_PID}
targets.discard(me)
stolen = []
for pid in sorted(targets):
    for how, read in (('process_vm_readv', vm_read), ('/proc/pid/mem', mem_read)):
        data = read(pid, VICTIM_ADDR, len(SECRET))
        if isinstance(data, bytes) and data == SECRET:
            stolen.append((how, pid))
for pid in sorted(targets):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
"""


def test_a_child_cannot_read_or_kill_another_child_or_the_fork_server(pool):
    skip_unless(pool.isolation)
    secret = b"W1 = %d" % random.randrange(1 << 60)
    before = pool._server
    with pool.session() as victim, pool.session() as thief:
        victim_code = (f"secret = bytearray({secret!r})\nimport ctypes, os\n"
                       "addr = ctypes.addressof((ctypes.c_char * len(secret)).from_buffer(secret))\npid = os.getpid()")
        assert run(victim, victim_code) == ["ok"]
        pid, addr = get(victim, "pid"), get(victim, "addr")
        attack = THIEF.replace("VICTIM_PID", str(pid)).replace("VICTIM_ADDR", str(addr)).replace("SECRET", repr(secret))
        assert run(thief, attack) == ["ok"]
        assert get(thief, "selfcheck") == str(b"own bytes")
        assert get(thief, "stolen") == []
        assert run(victim, "still = secret.decode()") == ["ok"] and get(victim, "still") == secret.decode()
    assert pool._server is before and before.proc.poll() is None
    assert_grades(pool)


def test_children_see_no_other_process_and_no_other_scratch(pool):
    skip_unless(pool.isolation)
    with pool.session() as a, pool.session() as b:
        assert run(a, "import os\nopen('secret', 'w').write('A')\nhere = os.getcwd()\nuid = os.getuid()") == ["ok"]
        here = get(a, "here")
        spy = (
            "import os\nseen = {}\n"
            "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
            f"paths = [{here!r} + '/secret', '/scratch/secret'] + ['/proc/%d/root%s/secret' % (p, {here!r}) for p in pids]\n"
            "paths += ['/proc/%d/cwd/secret' % p for p in pids]\n"
            "for p in paths:\n"
            "    try:\n        seen[p] = open(p).read()\n    except OSError as exc:\n        seen[p] = type(exc).__name__\n"
            "uid = os.getuid()\n"
        )
        assert run(b, spy) == ["ok"]
        seen = get(b, "seen")
        assert all(v != "A" for v in seen.values()), seen
        if pool.isolation == "bwrap":
            assert get(b, "pids") == [1, 2]  # its own init and itself: nothing of the others
        if ROOT:
            assert get(b, "uid") != get(a, "uid")


def test_a_cpu_hog_does_not_stop_a_concurrent_child(pool):
    """Evidence of a share, not a timing: while one child keeps as many processes busy as it
    may, the other still gets CPU time. (Fairness comes from each child being its own session,
    hence its own scheduler autogroup, where the kernel enables autogroups.)"""
    skip_unless(pool.isolation)
    hog = ("import os\nfor _ in range(12):\n    if os.fork() == 0:\n        while True:\n            pass\n"
           "hogging = True")
    work = ("import time\nc0, w0 = time.process_time(), time.monotonic()\nn = 0\n"
            "while time.monotonic() - w0 < 1.0:\n    n += 1\ncpu = time.process_time() - c0")
    group = "import os\ntry:\n    group = open('/proc/self/autogroup').read().split()[0]\nexcept OSError:\n    group = None"
    with pool.session() as hogger, pool.session() as worker:
        assert run(hogger, hog, group) == ["ok", "ok"]
        assert run(worker, work, group) == ["ok", "ok"]
        assert get(worker, "n") > 0 and get(worker, "cpu") > 0
        if autogroups_enabled():  # the share: one scheduler group per child, however many it forks
            assert get(worker, "group") and get(worker, "group") != get(hogger, "group")


def autogroups_enabled() -> bool:
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


KEYS = {"x86_64": (248, 250), "aarch64": (217, 219)}.get(os.uname().machine)
KEYRINGS = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ADD_KEY, KEYCTL = %r

def add(ring):
    r = libc.syscall(ADD_KEY, b"user", b"answers", b"def backward(): ...", 19, ring)
    return r if r >= 0 else -ctypes.get_errno()

def search(ring):
    r = libc.syscall(KEYCTL, 10, ring, b"user", b"answers", 0)  # KEYCTL_SEARCH
    return r if r >= 0 else -ctypes.get_errno()

rings = (-3, -4, -5)  # session, user, user-session keyrings
uid = os.getuid()
"""


@pytest.mark.skipif(KEYS is None, reason="keyctl syscall numbers known for x86_64 and aarch64 only")
def test_a_key_left_in_a_keyring_reaches_no_later_child(pool):
    """Keyrings belong to a uid and outlive its processes; the pool reuses its uids (64)."""
    skip_unless(pool.isolation)
    from grader.runner.sandbox import UID_COUNT

    with pool.session() as planter:
        assert run(planter, KEYRINGS % (KEYS,) + "added = [add(r) for r in rings]") == ["ok"]
        assert all(k > 0 for k in get(planter, "added")), get(planter, "added")  # keyctl works here
        first = get(planter, "uid")
    seen = []
    for _ in range(UID_COUNT):  # one of them gets the planter's uid again (as root)
        with pool.session() as later:
            assert run(later, KEYRINGS % (KEYS,) + "found = [search(r) for r in rings]") == ["ok"]
            seen.append((get(later, "uid"), get(later, "found")))
    if ROOT:
        assert first in [uid for uid, _ in seen]
    assert all(k < 0 for _, found in seen for k in found), seen
