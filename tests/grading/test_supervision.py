"""Supervision that never hangs, and a hard per-submission budget.

The fork server is killed (from the test, and by hostile children where they can reach it)
or stopped while sessions and whole ``backprop grade`` batches run: every waiter wakes,
every submission gets a record, the pool starts a new server (with its preloads) and the
batch goes on. A notebook of many sleeping cells is stopped at its budget, and its record
says in which cell the budget ran out. Real sandbox, real notebooks; nothing here asserts a
wall-clock time: operations that could hang run in a thread joined with a generous bound,
and the assertion is that they finished.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.runner import ChildPool, Limits
from grader.runner import pool as pool_module

ASSIGNMENT = "tensor_edf"
ISOLATION = os.environ.get("BACKPROP_ISOLATION") or None  # "rlimits-only" to test the fallback
HANG = 120.0  # "did not hang": far above any honest duration, only reached by a hang

HELPER = "def double(ns, x):\n    return 2 * x\n"


def _finishes(fn, *args):
    """``fn(*args)`` in a thread; its result, asserting it returned (did not hang)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(HANG)
    assert not t.is_alive(), f"{getattr(fn, '__name__', fn)} hung"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(p.name))
    return out


def _descendants(pid: int) -> list[int]:
    todo, out = [pid], []
    while todo:
        kids = _children(todo.pop())
        out += kids
        todo += kids
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _zygotes(root: int) -> list[int]:
    """The fork server processes (the Python zygote, inside bwrap or not) under ``root``."""
    pythons = {p for p in [root] + _descendants(root)  # the root itself without bwrap
               if "zygote_main" in _cmdline(p) and "bwrap" not in _cmdline(p).split()[0]}
    return sorted(p for p in pythons if _parent(p) not in pythons)  # its forked children share its command


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


ASLEEP = "backprop-test-asleep"  # printed by a cell just before it sleeps: it is past its child's setup


def _asleep(session) -> bool:
    return ASLEEP in session.output().text


def _wait_for(cond, what: str):
    deadline = time.monotonic() + HANG
    while not cond():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


# --- the pool ------------------------------------------------------------------------------


def test_a_killed_fork_server_wakes_every_session_and_is_replaced_with_its_preloads():
    with ChildPool(workers=2, limits=Limits(timeout=60), isolation=ISOLATION) as pool:
        assert pool.preload("helper", HELPER).ok
        first = pool._server
        a, b = pool.session(), pool.session()
        results: dict = {}

        def sleep_in(name, s):
            results[name] = s.exec_cells([{"id": "nap", "source": f"import time\nprint({ASLEEP!r})\ntime.sleep(50)"}])

        threads = [threading.Thread(target=sleep_in, args=(n, s), daemon=True) for n, s in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        (zygote,) = _zygotes(first.proc.pid)
        _wait_for(lambda: _asleep(a) and _asleep(b), "both children asleep in their cells")
        os.kill(zygote, signal.SIGKILL)
        for t in threads:
            t.join(HANG)
            assert not t.is_alive(), "a session waited forever on a dead fork server"
        for name in ("a", "b"):
            (cell,) = results[name]
            assert cell.status == "died" and cell.error.kind == "server", cell
            assert "fork server died" in cell.error.message and "SIGKILL" in cell.error.message
        a.close()
        b.close()
        assert not first.alive
        with pool.session() as s:  # a new server, with the module preloaded again
            assert pool._server is not first
            assert s.call("helper", "double", 21).value == 42
        assert pool.server_deaths and "SIGKILL" in pool.server_deaths[0]


def test_a_stopped_fork_server_is_declared_dead_and_replaced(monkeypatch):
    monkeypatch.setattr(pool_module, "SPAWN_TIMEOUT", 2.0)
    with ChildPool(workers=1, limits=Limits(timeout=5), isolation=ISOLATION) as pool:
        first = pool._server
        _wait_for(lambda: _zygotes(first.proc.pid), "the fork server started")
        (zygote,) = _zygotes(first.proc.pid)
        os.kill(zygote, signal.SIGSTOP)
        with pytest.raises(pool_module.SandboxDied, match="did not start a child"):
            _finishes(pool.session)
        assert not first.alive
        monkeypatch.setattr(pool_module, "SPAWN_TIMEOUT", 30.0)  # the new server's own start, under any load
        with _finishes(pool.session) as s:
            cell = s.exec_cells([{"id": "c", "source": "x = 1"}])[0]
            assert cell.status == "ok", (cell, pool._server.log_tail())
        assert pool._server is not first


def test_a_child_that_kills_every_process_it_can_never_hangs_the_pool():
    """As an ordinary user (or in a box shared with the server) the child reaches the fork
    server; as root with per-child uids it does not. Either way: an answer, then a new child."""
    with ChildPool(workers=1, limits=Limits(timeout=5), isolation=ISOLATION) as pool:
        with pool.session() as s:
            cells = _finishes(s.exec_cells, [
                {"id": "kill", "source": "\n".join(HOSTILE_KILLS.values())},
                {"id": "after", "source": "y = 2"}])
            assert cells[0].status in ("ok", "died"), cells
            if cells[0].status == "died":
                assert cells[0].error.kind in ("server", "died") and cells[1].status == "not_run"
        with _finishes(pool.session) as s:
            assert s.exec_cells([{"id": "c", "source": "x = 1"}])[0].status == "ok"


def test_the_deadline_kills_a_session_whatever_its_cells_do():
    with ChildPool(workers=1, limits=Limits(timeout=5), isolation=ISOLATION) as pool:
        deadline = time.monotonic() + 2.0
        with pool.session(deadline=deadline) as s:
            cells = _finishes(s.exec_cells, [{"id": f"c{i}", "source": "import time\ntime.sleep(4)"}
                                              for i in range(20)])
            assert cells[0].status == "timeout" and cells[0].error.kind == "budget"
            assert all(c.status == "not_run" for c in cells[1:])
            assert s.dead is not None and s.dead.kind == "budget"
            assert not s.call("x", "y").ok  # a dead session answers at once


# --- whole batches -------------------------------------------------------------------------


SLEEPY = "import time\ntime.sleep({s})\n"


def _grade(course, root: Path, opts: Options, workers: int, progress=None) -> tuple[dict, dict]:
    summary = _finishes(grade, Request(path=root / "class", assignment=ASSIGNMENT, course=course, out=root / "out",
                                       workers=workers, options=opts, nbgrader=False, reports=False,
                                       isolation=ISOLATION, progress=progress))
    records = {r["student"]: r for r in json.loads((root / "out" / "results.json").read_text())}
    return summary, records


def test_the_budget_stops_a_notebook_of_sleeping_cells_and_says_where(course, submitted_nb, tmp_path):
    """40 cells of 0.8 s each under a 1 s cell timeout would take 32 s; the budget is 4 s."""
    nb = submitted_nb
    for i in range(40):
        nb = sample.add_cell(nb, SLEEPY.format(s=0.8), after="mse-solution", cell_id=f"nap-{i}")
    sample.write(nb, tmp_path / "class" / "sleepy.ipynb")
    sample.write(submitted_nb, tmp_path / "class" / "honest.ipynb")
    opts = Options(limits=Limits(timeout=1.0), budget=4.0, max_restarts=2)
    summary, records = _grade(course, tmp_path, opts, workers=2)
    assert not summary["grader_errors"]
    honest, sleepy = records["honest"], records["sleepy"]
    assert honest["total"] == honest["max"] and honest["budget"] == {"seconds": 4.0}

    assert sleepy["status"] == "timeout" and sleepy["total"] == 0
    where = sleepy["budget"]["ran_out_in"]
    assert where.startswith("cell ") and sleepy["budget"]["seconds"] == 4.0
    cells = {c["id"]: c for c in sleepy["cells"]}
    culprit = cells[where[len("cell "):]]
    assert culprit["status"] == "timeout" and "time budget of 4 s ran out while this cell ran" in culprit["error"]
    naps = [c["status"] for c in sleepy["cells"] if c["id"].startswith("added-")]
    assert len(naps) == 40
    ran = naps.index("timeout")
    assert ran < 20 and naps[:ran] == ["ok"] * ran  # far from all 40: stopped, not waited for
    assert all(s == "not_run" for s in naps[ran + 1:])
    for t in sleepy["tests"]:
        assert t["points"] == 0 and "time budget of 4 s" in t["result"]["message"] and where in t["result"]["message"]
    assert any(f"ran out during {where}" in n for n in sleepy["notes"])


def test_the_budget_covers_a_test_that_sleeps_in_backward(course, submitted_nb, tmp_path):
    slow = sample.append_code(submitted_nb, "sigmoid-solution",
                              "import time\n_b = Sigmoid.backward\ndef _slow(self):\n    time.sleep(0.2)\n"
                              "    _b(self)\nSigmoid.backward = _slow\n")
    sample.write(slow, tmp_path / "class" / "slow.ipynb")
    opts = Options(limits=Limits(timeout=30.0), budget=3.0, max_restarts=2)
    _, records = _grade(course, tmp_path, opts, workers=1)
    rec = records["slow"]
    where = rec["budget"]["ran_out_in"]
    assert where.startswith("test "), rec["budget"]
    by_id = {t["id"]: t for t in rec["tests"]}
    culprit = by_id[where[len("test "):]]
    assert culprit["points"] == 0 and "whole time budget while this test ran" in culprit["result"]["message"]
    later = rec["tests"][[t["id"] for t in rec["tests"]].index(culprit["id"]) + 1:]
    assert all(t["points"] == 0 and "time budget" in t["result"]["message"] for t in later)


def test_killing_the_fork_server_mid_batch_regrades_the_submission_in_flight(course, submitted_nb, tmp_path,
                                                                            monkeypatch):
    """workers=1. The server is killed once, while ``a-slow``'s child is asleep in its cell
    (seen by the marker that cell prints): the submission in flight is known, and past its
    child's setup. Synchronised on that state, not on timing."""
    nap = f"import time\nprint({ASLEEP!r})\ntime.sleep(5)\n"
    sample.write(sample.add_cell(submitted_nb, nap, after="mse-solution"), tmp_path / "class" / "a-slow.ipynb")
    for k in range(3):
        sample.write(submitted_nb, tmp_path / "class" / f"b-{k}.ipynb")
    sessions: list = []
    real_session = pool_module.ChildPool.session

    def recorded(self, *args, **kwargs):
        s = real_session(self, *args, **kwargs)
        sessions.append(s)
        return s

    monkeypatch.setattr(pool_module.ChildPool, "session", recorded)
    kills: list = []
    done = threading.Event()

    def killer():
        while not done.is_set():
            for s in list(sessions):
                if _asleep(s):
                    (zygote,) = _zygotes(s._server.proc.pid)
                    os.kill(zygote, signal.SIGKILL)
                    kills.append((s, zygote))
                    return
            done.wait(0.02)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    opts = Options(limits=Limits(timeout=30.0), budget=120.0)
    try:
        summary, records = _grade(course, tmp_path, opts, workers=1)
    finally:
        done.set()
        t.join(HANG)
    assert kills, "a-slow's child was never seen asleep in its cell"
    (killed_in, _), = kills
    assert killed_in.dead is not None and killed_in.dead.kind == "server", killed_in.dead
    assert not summary["grader_errors"]
    assert set(records) == {"a-slow", "b-0", "b-1", "b-2"}
    for name, rec in records.items():
        assert rec["status"] == "graded" and rec["total"] == rec["max"], (name, rec.get("error"), rec["notes"])
    assert any("graded again from the start" in n for n in records["a-slow"]["notes"])
    assert not any("graded again" in n for k in range(3) for n in records[f"b-{k}"]["notes"])


HOSTILE_KILLS = {
    "kills-its-parent": "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    pass\n",
    "kills-everything": "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n",
}
# an ordinary user without bwrap shares its uid and pid namespace with the children: kill(-1)
# there would take this test run with it (the box's per-child namespaces are what stop it)
if os.geteuid() != 0 and (ISOLATION == "rlimits-only" or not pool_module.sandbox.available_isolation() == "bwrap"):
    del HOSTILE_KILLS["kills-everything"]


@pytest.mark.parametrize("workers", [1, 2])
def test_children_that_kill_the_fork_server_get_a_record_and_the_batch_goes_on(course, submitted_nb, tmp_path,
                                                                               workers):
    for name, code in HOSTILE_KILLS.items():
        sample.write(sample.add_cell(submitted_nb, code, after="mse-solution"), tmp_path / "class" / f"{name}.ipynb")
    for k in range(3):
        sample.write(submitted_nb, tmp_path / "class" / f"honest-{k}.ipynb")
    summary, records = _grade(course, tmp_path, Options(limits=Limits(timeout=5.0), budget=60.0), workers=workers)
    assert not summary["grader_errors"]
    assert set(records) == set(HOSTILE_KILLS) | {f"honest-{k}" for k in range(3)}
    for name in HOSTILE_KILLS:
        rec = records[name]
        if rec["status"] == "error":  # it reached the server (same uid): never graded from its own kill
            assert "grading sandbox failed 2 times" in rec["error"] and rec["total"] == 0
        else:  # it could not (root: per-child uids): graded like the notebook it is
            assert rec["status"] == "graded" and rec["total"] == rec["max"], rec
    for k in range(3):
        rec = records[f"honest-{k}"]
        if workers == 1:  # nobody else was in flight with it
            assert rec["status"] == "graded" and rec["total"] == rec["max"], rec
        else:  # in flight next to a server killer twice, it may be an error; never a wrong grade
            assert rec["status"] == "graded" and rec["total"] == rec["max"] or (
                rec["status"] == "error" and "grading sandbox failed" in rec["error"]), rec
