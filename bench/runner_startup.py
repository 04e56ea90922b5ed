"""Startup cost of an isolated session, against the obvious alternatives.

Prints the median time to get an isolated Python that has NumPy and has run a trivial cell
and a trivial call, for:
  (a) the runner's warm fork server (one sandboxed child per submission; with bwrap each
      child in its own pid/IPC/mount/network/UTS namespaces), and the start alone
      (open a session, one trivial call, close), beside the same fork server without
      namespaces (rlimits-only) on the same machine at the same time,
  (b) a fresh ``python -c "import numpy"`` subprocess (no isolation at all),
  (c) a fresh bwrap sandbox + python + numpy per submission.
and the ratios against nbgrader's ~0.8 s per notebook.

    python bench/runner_startup.py [repeats]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import numpy as np

from grader.runner import ChildPool, Limits, available_isolation
from grader.runner import sandbox

NBGRADER_SECONDS = 0.8
PROBE = "def get(ns, name):\n    return ns[name]\n"


def timed(fn, repeats: int) -> float:
    fn()  # warm caches
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def fork_server(pool: ChildPool) -> None:
    with pool.session() as session:
        trivial_submission(session)


def start_only(pool: ChildPool) -> None:
    with pool.session() as session:
        assert session.call("probe", "get", "__name__").ok


def trivial_submission(session) -> None:
    session.load_module("probe", PROBE)
    session.exec_cells([{"id": "c", "source": "import numpy as np\nx = np.arange(3.0)"}])
    out = session.call("probe", "get", "x")
    assert out.ok
    np.testing.assert_array_equal(out.value, [0.0, 1.0, 2.0])


def fresh_python() -> None:
    subprocess.run([sys.executable, "-c", "import numpy; x = numpy.arange(3.0); print(x.sum())"], check=True, capture_output=True)


def fresh_bwrap() -> None:
    argv = sandbox._bwrap_argv() + ["/opt/python/bin/" + sandbox._python_name(), "-I", "-S", "-c",
                                    "import sys; sys.path.insert(0, '/opt/site'); import numpy; print(numpy.arange(3.0).sum())"]
    subprocess.run(argv, check=True, capture_output=True, env=sandbox._env())


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    isolation = available_isolation()
    print(f"isolation: {isolation}" + ("   <-- NO filesystem/network isolation" if isolation != "bwrap" else ""))
    print(f"load average (1 min) before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rows = []
    with ChildPool(workers=2, limits=Limits()) as pool:
        print(f"memory and CPU per child: {pool.limits_mode}"
              + (f" (no cgroup: {pool.cgroups_problem})" if pool.cgroups_problem else ""))
        assert pool.preload("probe", PROBE).ok
        rows.append(("(a) fork server session (isolated)", timed(lambda: fork_server(pool), repeats)))
        rows.append(("(a) its start alone (open, call, close)", timed(lambda: start_only(pool), repeats)))
        start = time.perf_counter()
        pool.map(lambda session, _: trivial_submission(session), range(100))
        parallel = (time.perf_counter() - start) / 100
        cgroups_on = pool.limits_mode.startswith("cgroup")
    if cgroups_on:  # the same pool without a cgroup per child, at the same time: what the cgroups cost
        with ChildPool(workers=2, limits=Limits(), cgroups=False) as pool:
            assert pool.preload("probe", PROBE).ok
            rows.append((f"(a) start alone, without cgroups ({pool.limits_mode})",
                         timed(lambda: start_only(pool), repeats)))
    if isolation == "bwrap" and os.geteuid() == 0:  # the fallback refuses as an ordinary user
        with ChildPool(workers=2, limits=Limits(), isolation="rlimits-only") as pool:
            assert pool.preload("probe", PROBE).ok
            rows.append(("(a') same, rlimits-only (no namespaces)", timed(lambda: fork_server(pool), repeats)))
    rows.append(("(b) fresh python + numpy (no isolation)", timed(fresh_python, max(5, repeats // 3))))
    if isolation == "bwrap":
        rows.append(("(c) fresh bwrap + python + numpy", timed(fresh_bwrap, max(5, repeats // 3))))
    for name, seconds in rows:
        print(f"{name:52s} {seconds * 1000:8.1f} ms   {NBGRADER_SECONDS / seconds:6.1f}x faster than nbgrader (~0.8 s)")
    print(f"{'(a) 100 sessions, 2 workers, per session':52s} {parallel * 1000:8.1f} ms   {NBGRADER_SECONDS / parallel:6.1f}x")
    print(f"load average (1 min) after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
