"""Trusted helper modules loaded once in the fork server reach every later child."""
import os
import time

import pytest

from grader.runner import ChildPool, Limits, available_isolation

if available_isolation() == "rlimits-only" and os.geteuid() != 0:
    pytest.skip("rlimits-only as an ordinary user refuses to grade (test_runner_fallback.py checks that)",
                allow_module_level=True)

HELPER = '''
from dataclasses import dataclass

@dataclass
class Box:
    x: int

def double(ns, a):
    return Box(a).x * 2 + ns.get("k", 0)
'''


def test_preloaded_module_is_in_every_new_session_and_not_shared_between_them():
    with ChildPool(workers=2, limits=Limits(timeout=5)) as pool:
        assert pool.preload("helper", HELPER).ok
        assert pool.preloaded == {"helper"}
        with pool.session() as a, pool.session() as b:
            a.exec_cells([{"id": "c", "source": "k = 5\nimport helper\nhelper.double = lambda ns, a: -1"}])
            assert a.call("helper", "double", 10).value == -1  # a student may spoil its own copy
            assert b.call("helper", "double", 10).value == 20  # but not its neighbour's


def test_a_failing_or_oversized_preload_is_reported_and_leaves_the_pool_usable():
    with ChildPool(workers=1, limits=Limits(timeout=5)) as pool:
        bad = pool.preload("bad", "raise ValueError('nope')")
        assert not bad.ok and "nope" in bad.error.message
        big = pool.preload("big", "x = 1\n" * 20000)
        assert not big.ok and "too large" in big.error.message
        assert pool.preloaded == frozenset()
        with pool.session() as s:
            assert not s.call("bad", "f").ok
            s.load_module("helper", HELPER)  # the per-session path still works
            assert s.call("helper", "double", 1).value == 2


def test_a_restarted_fork_server_loads_the_modules_again():
    with ChildPool(workers=1, limits=Limits(timeout=5)) as pool:
        assert pool.preload("helper", HELPER).ok
        pool._server.proc.kill()
        deadline = time.monotonic() + 5
        while pool._server.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        with pool.session() as s:
            assert s.call("helper", "double", 3).value == 6
