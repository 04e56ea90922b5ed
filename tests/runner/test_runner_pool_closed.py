"""A closed pool answers at once: whoever asks it for a session (also a worker that was
waiting for a free slot when it closed) gets ``PoolClosed``, never a wait; a session open
when it closed ends with a problem, not a hang. Real sandbox; nothing asserts a duration:
calls that could hang run in a thread joined with a generous bound."""
from __future__ import annotations

import os
import threading

import pytest

from grader.runner import ChildPool, Limits, PoolClosed

ISOLATION = os.environ.get("BACKPROP_ISOLATION") or None
HANG = 60.0


def _in_thread(fn):
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - looked at by the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def test_a_worker_waiting_for_a_slot_of_a_closed_pool_gets_pool_closed():
    pool = ChildPool(workers=1, limits=Limits(timeout=30), isolation=ISOLATION)
    held = pool.session()  # the only slot
    waiter, box = _in_thread(pool.session)
    assert held.exec_cells([{"id": "c", "source": "x = 1"}])[0].status == "ok"
    assert waiter.is_alive() and not box  # it waits for the slot, as it should while the pool is open
    sleeper, slept = _in_thread(lambda: held.exec_cells([{"id": "nap", "source": "import time\ntime.sleep(25)"}]))
    pool.close()
    waiter.join(HANG)
    assert not waiter.is_alive(), "a worker waited forever on a closed pool"
    assert isinstance(box.get("error"), PoolClosed), box
    assert "closed" in str(box["error"])
    sleeper.join(HANG)
    assert not sleeper.is_alive(), "a session of a closed pool waited forever"
    (cell,) = slept["value"]
    assert cell.status != "ok" and cell.error is not None, cell  # ended by the close, not by its sleep
    held.close()


def test_every_call_on_a_closed_pool_raises_at_once():
    pool = ChildPool(workers=2, limits=Limits(timeout=5), isolation=ISOLATION)
    with pool.session() as s:
        assert s.exec_cells([{"id": "c", "source": "x = 1"}])[0].status == "ok"
    pool.close()
    for call in (pool.session, lambda: pool.preload("m", "x = 1"),
                 lambda: pool.map(lambda session, item: item, [1, 2])):
        t, box = _in_thread(call)
        t.join(HANG)
        assert not t.is_alive(), "a call on a closed pool waited"
        assert isinstance(box.get("error"), PoolClosed), box
    assert pool.isolation in ("bwrap", "rlimits-only")  # still says what it was
    pool.close()  # closing twice is harmless
    with pytest.raises(PoolClosed):
        pool.session()
