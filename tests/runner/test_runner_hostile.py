"""Hostile submissions at the runner level.

Each case runs in a fresh session of one shared pool and asserts its outcome; after every
case the same pool must still grade a well-behaved submission correctly.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Callable

import numpy as np
import pytest

from grader.runner import ChildPool, Limits, available_isolation

ISOLATION = available_isolation()
if ISOLATION == "rlimits-only" and os.geteuid() != 0:
    pytest.skip("rlimits-only as an ordinary user refuses to grade (test_runner_fallback.py checks that)",
                allow_module_level=True)
needs_bwrap = pytest.mark.skipif(ISOLATION != "bwrap", reason="bubblewrap (bwrap) is not installed or not usable: filesystem/network isolation needs it")
needs_root_bwrap = pytest.mark.skipif(
    ISOLATION != "bwrap" or os.geteuid() != 0,
    reason="per-child uids and mount namespaces need bwrap started as root",
)

LIMITS = Limits(
    cpu_seconds=5,
    memory_bytes=512 << 20,
    nproc=16,
    nofile=64,
    fsize_bytes=1 << 20,
    scratch_bytes=8 << 20,
    output_bytes=4096,
    timeout=1.0,
)

PROBE = """
import numpy as np

def get(ns, name):
    return ns[name]

def apply(ns, name, *args):
    return ns[name](*args)

def double(ns, x):
    return 2 * np.asarray(x)
"""

# Files and directories of the trusted parent, which the child must not see.
PARENT_PATHS = [
    "/work/main/reference/__init__.py",
    "/work/main/assignments",
    "/root",
    "/root/.pyenv/versions",
    os.path.abspath(__file__),
    "/etc/passwd",
    "/proc/1/root/work",
]

READ_PROBE = """
import os
found = {}
for p in %r:
    try:
        if os.path.isdir(p):
            os.listdir(p)
        else:
            open(p, "rb").read(1)
        found[p] = "READ"
    except OSError as exc:
        found[p] = type(exc).__name__
"""


@pytest.fixture(scope="module")
def pool():
    with ChildPool(workers=2, limits=LIMITS) as pool:
        yield pool


def assert_pool_still_grades(pool):
    with pool.session() as session:
        assert session.load_module("probe", PROBE).ok
        [cell] = session.exec_cells([{"id": "ok", "source": "def f(x):\n    return x + 1\n"}])
        assert cell.status == "ok"
        out = session.call("probe", "apply", "f", np.arange(3.0))
        assert out.ok
        np.testing.assert_array_equal(out.value, [1.0, 2.0, 3.0])


@dataclasses.dataclass
class Case:
    name: str
    cells: list[str]
    check: Callable  # check(session, cell_results)
    call: tuple | None = None  # (func, *args) run after the cells; its CallResult goes to check
    marks: tuple = ()
    timeout: float | None = None  # its own per-cell timeout, where LIMITS' 1 s is not what the case tests


def statuses(cells):
    return [c.status for c in cells]


def found_only_errors(session, cells):
    assert statuses(cells) == ["ok"]
    found = session.call("probe", "get", "found")
    assert found.ok, found.error
    assert found.value and all(v in ("FileNotFoundError", "PermissionError", "OSError") for v in found.value.values()), found.value


def check_top_level_loop(session, cells):
    # The soft alarm stops the loop; the next cell still runs in the same child.
    assert statuses(cells) == ["timeout", "ok"]
    assert session.call("probe", "get", "after").value == 2


def check_stubborn_loop(session, cells):
    # The loop swallows the alarm: the parent kills the child and reports the rest as not run.
    assert statuses(cells) == ["ok", "timeout", "not_run"]
    assert cells[1].error.kind == "timeout"
    assert session.dead is not None
    assert session.call("probe", "get", "x").error.kind == "closed"


def check_call_loop(session, cells):
    out = session.call("probe", "apply", "spin", 1)
    assert not out.ok and out.error.kind == "timeout"


def check_memory_bomb(session, cells):
    assert [c.error.type for c in cells] == ["MemoryError", "MemoryError", "MemoryError"]
    assert session.call("probe", "get", "alive").value == 1


def check_fork_count(session, cells):
    assert statuses(cells) == ["ok"]
    forked = session.call("probe", "get", "forked").value
    assert forked < LIMITS.nproc


def check_fork_bomb(session, cells):
    assert cells[0].status == "timeout"


def check_cell_error(expected_type):
    def check(session, cells):
        assert statuses(cells) == ["error", "ok"], cells
        assert cells[0].error.type == expected_type
    return check


def check_died(reason):
    def check(session, cells):
        assert cells[0].status == "died", cells
        assert reason in cells[0].error.message
        assert cells[1].status == "not_run"
        assert session.dead is not None
    return check


def check_kill_all(session, cells):
    # kill(-1) reaches only the child's own processes (never the server or siblings) and spares
    # the caller; alone in its pid namespace it finds nobody to signal (ESRCH).
    assert cells[0].status == "ok" or cells[0].error.type == "ProcessLookupError", cells
    assert cells[1].status == "ok"
    assert session.dead is None


def check_flood(session, cells):
    assert statuses(cells) == ["ok", "ok"]
    out = session.output()
    assert out.truncated and out.total_bytes == 200_000_000
    assert len(out.text) == LIMITS.output_bytes
    assert session.call("probe", "get", "done").value is True


def check_protocol_garbage(session, cells):
    assert cells[0].status == "died"
    assert cells[0].error.kind in ("protocol", "died")
    assert session.dead is not None


def check_writes(session, cells):
    assert statuses(cells) == ["ok"]
    wrote = session.call("probe", "get", "wrote").value
    assert wrote.pop("scratch") == "WROTE"
    assert wrote and all(v != "WROTE" for v in wrote.values()), wrote


def check_network(session, cells):
    assert statuses(cells) == ["ok"]
    net = session.call("probe", "get", "net").value
    assert all(v != "CONNECTED" for v in net.values()), net


def check_monkeypatch(session, cells):
    # Patches may corrupt the child's own replies (e.g. json's encoder uses builtins.isinstance);
    # the parent then gets a clean problem, or correct data, never a forged value.
    for cell in cells:
        assert cell.status == "ok" or (cell.error is not None and cell.error.kind in ("protocol", "died", "closed")), cell
    out = session.call("probe", "double", np.arange(3.0))
    if out.ok:
        np.testing.assert_array_equal(out.value, [0.0, 2.0, 4.0])
    else:
        assert out.error.kind in ("student", "protocol", "died", "closed")


def check_magics(session, cells):
    assert statuses(cells) == ["ok", "ok", "ok"]
    assert cells[0].neutralised and "%%bash" in cells[0].neutralised[0]
    assert len(cells[1].neutralised) == 2
    assert session.call("probe", "get", "y").value == 2
    assert session.call("probe", "get", "usr_intact").value is True


def check_limits_hold(session, cells):
    assert cells[0].status == "error" and "too large" in cells[0].error.message.lower()
    assert cells[1].status == "error" and cells[1].error.type == "OSError"  # EMFILE
    limits = session.call("probe", "get", "limits").value
    assert limits["as"] == LIMITS.memory_bytes and limits["nproc"] == LIMITS.nproc
    assert limits["fsize"] == LIMITS.fsize_bytes and limits["cpu"] == LIMITS.cpu_seconds


CASES = [
    Case("infinite loop at top level", ["while True:\n    pass", "after = 2"], check_top_level_loop),
    Case("infinite loop that swallows the alarm",
         ["x = 1", "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass", "y = 2"],
         check_stubborn_loop),
    Case("infinite loop inside a called function", ["def spin(x):\n    while True:\n        pass"], check_call_loop),
    Case("memory bomb",
         ["x = bytearray(4 << 30)", "import numpy as np\nx = np.ones((1 << 16, 1 << 16))",
          "chunks = []\nwhile True:  # untouched pages: the address-space limit, not the machine's speed\n    chunks.append(np.empty(50 << 20, np.uint8))", "del chunks\nalive = 1"],
         lambda s, cells: check_memory_bomb(s, cells[:3])),
    Case("fork count is capped by RLIMIT_NPROC",
         ["import os, time\nforked = 0\nfor _ in range(200):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
          "    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    forked += 1"],
         check_fork_count),
    Case("fork bomb", ["import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"], check_fork_bomb),
    Case("sys.exit()", ["import sys\nsys.exit()", "z = 1"], check_cell_error("SystemExit")),
    Case("raise SystemExit", ["raise SystemExit(4)", "z = 1"], check_cell_error("SystemExit")),
    Case("KeyboardInterrupt", ["raise KeyboardInterrupt", "z = 1"], check_cell_error("KeyboardInterrupt")),
    Case("os._exit(3)", ["import os\nos._exit(3)", "z = 1"], check_died("exited with code 3")),
    Case("segfault", ["import ctypes\nctypes.string_at(0)", "z = 1"], check_died("SIGSEGV")),
    Case("kill every process it can", ["import os, signal\nos.kill(-1, signal.SIGKILL)", "z = 1"], check_kill_all),
    Case("SIGKILL itself", ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "z = 1"], check_died("SIGKILL")),
    Case("closing every fd", ["import os\nos.closerange(0, 1024)", "z = 1"], check_died("child died")),
    Case("200 MB of output",
         ["import sys\nfor _ in range(100):\n    print('x' * 999_999)", "import os\nos.write(1, b'y' * 100_000_000)\ndone = True"],
         check_flood, timeout=60.0),  # a deadlocked drain would still time out; a slow one under load need not
    Case("garbage on the protocol fds",
         ["import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'\\xff' * 64 + b'{garbage')\n    except OSError:\n        pass"],
         check_protocol_garbage),
    Case("read parent files", [READ_PROBE % (PARENT_PATHS,)], found_only_errors, marks=(needs_bwrap,)),
    Case("read via ../ relative paths",
         [READ_PROBE % (["../" * k + "work/main/reference/__init__.py" for k in range(1, 6)] + ["../../root", "../proc/1/cwd"],)],
         found_only_errors, marks=(needs_bwrap,)),
    Case("write outside scratch",
         ["import os\nwrote = {}\nfor p in ['/x', '/usr/x', '/opt/python/x', '/opt/site/numpy/x', '/opt/runner/child.py', '/dev/x', '/etc/ld.so.cache', 'scratch']:\n"
          "    try:\n        with open(p if p != 'scratch' else 'mine.txt', 'w') as f:\n            f.write('pwned')\n        wrote[p] = 'WROTE'\n"
          "    except OSError as exc:\n        wrote[p] = type(exc).__name__"],
         check_writes, marks=(needs_bwrap,)),
    Case("network", [], check_network, marks=(needs_bwrap,)),  # cells filled in by the test: needs a live port
    Case("monkeypatch json, numpy, builtins, protocol",
         ["import json\njson.dumps = lambda *a, **k: '{\"result\": 42}'\njson.loads = lambda *a, **k: {'op': 'close'}",
          "import numpy as np\nnp.asarray = lambda *a, **k: 'forged'\nnp.ascontiguousarray = lambda *a, **k: None",
          "import builtins\nbuiltins.isinstance = lambda *a: False\nbuiltins.len = lambda x: 0",
          "import sys\nfor m in list(sys.modules.values()):\n    if getattr(m, '__name__', '') in ('protocol', 'grader.runner.protocol'):\n        m.to_wire = lambda o: {'result': 'forged'}"],
         check_monkeypatch),
    Case("%%bash cell and !rm -rf / line",
         ["%%bash\nrm -rf /\n", "x = 1\n!rm -rf /\n%time y = 2\ny = 2", "import os\nusr_intact = os.path.isdir('/usr/lib')"],
         check_magics),
    Case("rlimits hold",
         ["with open('big', 'wb') as f:\n    f.write(b'0' * (2 << 20))",
          "fds = [open('/dev/null') for _ in range(100)]",
          "import resource as r\nlimits = {k: r.getrlimit(getattr(r, 'RLIMIT_' + k.upper()))[1] for k in ('as', 'nproc', 'fsize', 'cpu')}\n"
          "limits['cpu'] -= 1"],
         check_limits_hold),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_hostile_submission(pool, case):
    cells = list(case.cells)
    listener = None
    if case.name == "network":
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        cells = [
            "import socket\nnet = {}\nfor host, port in [('127.0.0.1', %d), ('1.1.1.1', 53), ('10.0.2.2', 80)]:\n"
            "    try:\n        socket.create_connection((host, port), timeout=0.3).close()\n        net[host] = 'CONNECTED'\n"
            "    except OSError as exc:\n        net[host] = type(exc).__name__" % port
        ]
    try:
        limits = LIMITS if case.timeout is None else dataclasses.replace(LIMITS, timeout=case.timeout)
        with pool.session(limits=limits) as session:
            assert session.load_module("probe", PROBE).ok
            results = session.exec_cells([{"id": f"c{i}", "source": src} for i, src in enumerate(cells)])
            case.check(session, results)
    finally:
        if listener is not None:
            listener.close()
    assert_pool_still_grades(pool)


def test_stdlib_imports_lazily_inside_the_sandbox(pool):
    with pool.session() as session:
        source = ("import encodings.idna, decimal, fractions, statistics, json, tempfile, uuid, secrets\n"
                  "ok = tempfile.mkstemp()[1]")
        [cell] = session.exec_cells([{"id": "imports", "source": source}])
        assert cell.status == "ok", cell.error


def test_parallel_sessions_are_independent(pool):
    def grade(session, n):
        session.load_module("probe", PROBE)
        session.exec_cells([{"id": "x", "source": f"x = {n}"}])
        return session.call("probe", "get", "x").value

    assert pool.map(grade, range(8)) == list(range(8))


def test_isolation_is_reported():
    assert ISOLATION in ("bwrap", "rlimits-only")
    if ISOLATION != "bwrap":
        pytest.skip("bwrap unavailable: sessions run with rlimits only (no filesystem or network isolation)")


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback refuses to grade as an ordinary user")
def test_rlimits_only_fallback_still_contains_failures():
    """Without bwrap: no filesystem/network isolation, but limits, timeouts and deaths still hold."""
    with ChildPool(workers=1, limits=LIMITS, isolation="rlimits-only") as fallback:
        assert fallback.isolation == "rlimits-only"
        with fallback.session() as session:
            assert session.load_module("probe", PROBE).ok
            cells = session.exec_cells([{"id": "a", "source": "while True:\n    pass"}, {"id": "b", "source": "x = bytearray(4 << 30)"},
                                        {"id": "c", "source": "import os\nos._exit(3)"}])
            assert [c.status for c in cells] == ["timeout", "error", "died"]
        assert_pool_still_grades(fallback)

