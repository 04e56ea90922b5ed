"""Parent side of the runner: a warm fork server and one isolated session per submission.

    with ChildPool(workers=2, limits=Limits(timeout=5)) as pool:
        with pool.session() as session:
            session.load_module("backprop_checks", source)
            cells = session.exec_cells([{"id": "c1", "source": "x = 1"}])
            out = session.call("backprop_checks", "probe", spec)   # CallResult

Every way a submission can misbehave (exception, timeout, death, output flood, protocol
garbage) comes back as data: a ``CellResult`` or ``CallResult`` carrying a ``Problem``.
Only grader bugs raise.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import json
import os
import queue
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import cgroups as cgroups_module
from . import protocol, sandbox
from .cgroups import ChildCgroup
from .sandbox import Limits

GRACE_SECONDS = 1.0  # parent deadline = child's soft timeout + this
SPAWN_TIMEOUT = 30.0  # a fork server that does not answer a spawn in this time is declared dead
SEND_TIMEOUT = 10  # seconds a control message may wait for room in the server's socket
WATCH_INTERVAL = 0.5  # how often the event reader checks that the server process is still there
EXIT_WAIT = 5.0  # how long to wait for the exit event of a child that was killed or died


# Evidence a trusted helper in the child reports the moment it sees it, on the child's stderr:
# whatever the student's code does afterwards, what was written is in the parent's pipe. A
# student can print such lines too, which only flags their own submission.
EVIDENCE_MARK = b"\x00backprop-evidence\x00"
_EVIDENCE = re.compile(re.escape(EVIDENCE_MARK) + rb"(tamper|review)\x00([^\x00\n]{1,200})\x00")
MAX_EVIDENCE = 50
_TAIL = len(EVIDENCE_MARK) + 220  # longer than an evidence line: one split by a read is seen whole


class PoolClosed(RuntimeError):
    """The pool was closed (the batch ended or was interrupted): it starts no session any more.

    Raised at once, also to a caller that was waiting for a free slot when the pool closed,
    so no worker thread waits forever on a pool nobody will serve again."""


class SandboxDied(RuntimeError):
    """The fork server died or stopped answering: no session on it can finish.

    The pool starts a new server for the next session; the caller decides whether to retry
    the submission (``grader.grading.execute`` retries it once)."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why something did not produce a value.

    kind: "student" (student code raised), "timeout", "died", "protocol" (the child sent
    garbage), "closed" (the session was already dead or closed), "budget" (the session's
    deadline passed: the child was killed), "server" (the fork server died under the child).
    """

    kind: str
    type: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.kind == "student" else self.message


@dataclasses.dataclass(frozen=True)
class CallResult:
    ok: bool
    value: Any = None
    error: Problem | None = None


@dataclasses.dataclass(frozen=True)
class CellResult:
    id: str
    status: str  # "ok", "error", "timeout", "died", "not_run"
    error: Problem | None = None
    neutralised: tuple[str, ...] = ()
    output_bytes: int = 0


@dataclasses.dataclass(frozen=True)
class Output:
    text: str  # the first ``Limits.output_bytes`` of student stdout+stderr
    total_bytes: int
    truncated: bool


_SIGNAL_HINTS = {
    signal.SIGKILL: "killed (memory, CPU or process limit?)",
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGSEGV: "segmentation fault",
}


_PROBLEM_TYPES = {"timeout": "TimeoutError", "protocol": "ProtocolError", "died": "ChildDied",
                  "budget": "BudgetExceeded", "server": "SandboxDied"}


def _death_reason(event: dict | None) -> str:
    if event is None:
        return "child died: closed its channel"
    if event.get("signal") is not None:
        sig = event["signal"]
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"child died: {name}, {_SIGNAL_HINTS.get(sig, 'killed by a signal')}"
    return f"child died: exited with code {event.get('code')}"


class _ForkServer:
    """The zygote process inside the sandbox, and the thread reading its events."""

    def __init__(self, isolation: str | None, uid_base: int | None, private: Sequence[str] = ()):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cmd = sandbox.server_command(theirs.fileno(), isolation, uid_base, private)
        self.isolation = cmd.isolation
        self._cleanup_dir = cmd.cleanup_dir
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd.argv, env=cmd.env, cwd=cmd.cwd, pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, start_new_session=True,
        )
        theirs.close()
        self.sock = ours
        # a stopped or wedged server must not block a sender forever: sends fail after this
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", SEND_TIMEOUT, 0))
        self.alive = True
        self.death: str | None = None  # why the server is gone, once it is
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._events: dict[int, dict[str, dict]] = {}
        threading.Thread(target=self._read_events, name="runner-events", daemon=True).start()
        ready = self.wait_event(0, ("ready", "refused"), SPAWN_TIMEOUT)  # the fallback checks itself first
        if ready is None or ready["event"] != "ready":
            detail = ready.get("message") if ready else self.log_tail()
            self.close()
            raise sandbox.IsolationError(f"the sandbox ({self.isolation}) refuses to grade: {detail}")
        self.forget(0)

    def _read_events(self) -> None:
        """The server's watcher: reads its events, and notices its death (end of file on the
        channel, or the process gone) within ``WATCH_INTERVAL``; then wakes every waiter."""
        while self.alive:
            try:
                ready, _, _ = select.select([self.sock], [], [], WATCH_INTERVAL)
            except (OSError, ValueError):  # the socket was closed under us
                break
            if not ready:
                if self.proc.poll() is not None:
                    break
                continue
            try:
                msg = self.sock.recv(1 << 16)
            except OSError:
                msg = b""
            if not msg:
                break
            try:
                event = json.loads(msg)
                sid, kind = int(event["sid"]), str(event["event"])
            except (ValueError, KeyError, TypeError):
                continue
            with self._cond:
                self._events.setdefault(sid, {})[kind] = event
                self._cond.notify_all()
        self._mark_dead(self._exit_reason())

    def _exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=WATCH_INTERVAL)
        except subprocess.TimeoutExpired:
            return "the sandbox server closed its channel"
        sig = -code if code < 0 else code - 128 if code > 128 else 0  # bwrap reports 128 + signal
        if sig:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            return f"the sandbox server was killed ({name})"
        return f"the sandbox server exited with code {code}"

    def _mark_dead(self, reason: str) -> None:
        with self._cond:
            if self.alive:
                self.alive, self.death = False, reason
            self._cond.notify_all()

    def fail(self, reason: str) -> None:
        """Declare the server dead (it stopped answering) and kill it with all its children,
        so every session on it ends now instead of at its own deadline."""
        self._mark_dead(reason)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass

    def wait_event(self, sid: int, kinds: tuple[str, ...], timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                events = self._events.get(sid, {})
                for kind in kinds:
                    if kind in events:
                        return events[kind]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.alive:
                    return None
                self._cond.wait(remaining)

    def forget(self, sid: int) -> None:
        with self._cond:
            self._events.pop(sid, None)

    def send(self, request: dict, fds: Sequence[int] = ()) -> None:
        """Send a control message; raises ``SandboxDied`` when the server cannot take it."""
        if not self.alive:
            raise SandboxDied(self.death or "the sandbox server is gone")
        try:
            with self._send_lock:
                socket.send_fds(self.sock, [json.dumps(request).encode()], list(fds))
        except OSError as exc:
            self.fail(f"the sandbox server stopped taking requests ({type(exc).__name__})")
            raise SandboxDied(self.death) from None

    def log_tail(self) -> str:
        self.log.seek(0, os.SEEK_END)
        size = self.log.tell()
        self.log.seek(max(0, size - 2000))
        return self.log.read().decode("utf-8", "replace")

    def close(self) -> None:
        self._mark_dead("closed by the pool")
        try:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader before its fd goes away
            except OSError:
                pass
            self.sock.close()
        finally:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass  # unkillable (stuck in the kernel): leave it, never hang the batch
            self.log.close()
            if self._cleanup_dir:
                shutil.rmtree(self._cleanup_dir, ignore_errors=True)


class _Launcher:
    """Starts fork servers from one thread that lives as long as the pool.

    bwrap's ``--die-with-parent`` is a parent-death signal, which the kernel sends when the
    *thread* that started bwrap exits: a server restarted by a short-lived worker thread
    would die with that thread."""

    def __init__(self):
        self._jobs: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, name="runner-launcher", daemon=True).start()

    def _run(self) -> None:
        while True:
            fn, box, done = self._jobs.get()
            if fn is None:
                return
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["error"] = exc
            done.set()

    def call(self, fn: Callable[[], Any]) -> Any:
        box: dict = {}
        done = threading.Event()
        self._jobs.put((fn, box, done))
        if not done.wait(2 * SPAWN_TIMEOUT):  # a server waits up to SPAWN_TIMEOUT for its own "ready"
            raise SandboxDied(f"the sandbox server did not start within {SPAWN_TIMEOUT:g} s")
        if "error" in box:
            raise box["error"]
        return box["value"]

    def close(self) -> None:
        self._jobs.put((None, None, None))


class Session:
    """One isolated child running one submission. Not thread-safe; use one per thread."""

    def __init__(self, server: _ForkServer, sid: int, limits: Limits, on_close: Callable[[], None],
                 deadline: float | None = None, cgroup: ChildCgroup | None = None):
        self.limits = limits
        self.isolation = server.isolation
        self.cgroup = cgroup  # the child's own cgroup (memory, CPU weight), removed with the session
        # the hard end of the session (``time.monotonic()``): every reply is awaited until the
        # earlier of this and the per-request timeout; past it the child is killed ("budget")
        self.deadline = deadline
        self._server, self._sid, self._on_close = server, sid, on_close
        self._dead: Problem | None = None
        self._closed = False
        p2c_r, self._to_child = os.pipe()
        self._from_child, c2p_w = os.pipe()
        self._capture, cap_w = os.pipe()
        passed = [p2c_r, c2p_w, cap_w]
        try:
            passed += cgroup.open_procs() if cgroup is not None else []  # the child joins them first
            server.send({"op": "spawn", "sid": sid, "limits": limits.for_child()}, passed)
        except BaseException:
            for fd in (self._to_child, self._from_child, self._capture):
                os.close(fd)
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            for fd in passed:
                os.close(fd)
        os.set_blocking(self._to_child, False)
        self._out = bytearray()
        self._out_total = 0
        self._evidence: list[tuple[str, str]] = []
        self._drain = threading.Thread(target=self._drain_output, name=f"runner-output-{sid}", daemon=True)
        self._drain.start()
        event = server.wait_event(sid, ("spawned", "error"), SPAWN_TIMEOUT)
        if event is None:
            if server.alive:
                server.fail(f"the sandbox server did not start a child within {SPAWN_TIMEOUT:g} s")
            self._release(notify=False)
            raise SandboxDied(f"sandbox server could not start a child: {server.death}")
        if event["event"] != "spawned":
            self._release(notify=False)
            raise RuntimeError(f"sandbox server could not start a child: {event.get('message')}")

    # --- the three requests --------------------------------------------------------------

    def load_module(self, name: str, source: str) -> CallResult:
        """Execute trusted helper source as module ``name`` inside the child."""
        reply = self._request({"op": "load_module", "name": name, "source": source, "timeout": self.limits.timeout})
        if isinstance(reply, Problem):
            return CallResult(False, error=reply)
        if "error" in reply:
            return CallResult(False, error=self._student_problem(reply["error"]))
        return CallResult(True)

    def exec_cells(self, cells: Iterable[Mapping[str, Any]]) -> list[CellResult]:
        """Run code cells (``{"id", "source"}``) in order in one namespace, each on its own."""
        cells = [{"id": str(c["id"]), "source": str(c["source"])} for c in cells]
        results: list[CellResult] = []
        problem = self._send({"op": "exec_cells", "cells": cells, "timeout": self.limits.timeout})
        while problem is None and len(results) < len(cells):
            reply = self._receive()
            if isinstance(reply, Problem):
                problem = reply
                break
            cell = reply.get("cell") if isinstance(reply, dict) else None
            expected = cells[len(results)]["id"]
            if not isinstance(cell, dict) or cell.get("id") != expected:
                problem = self._kill("protocol", f"protocol error: expected the result of cell {expected}")
                break
            results.append(self._cell_result(cell))
        if problem is None:
            reply = self._receive()
            if isinstance(reply, Problem):
                problem = reply
            elif reply != {"done": True}:
                problem = self._kill("protocol", "protocol error: expected the end of the cells")
        if problem is not None:
            rest = cells[len(results):]
            status = "timeout" if problem.kind in ("timeout", "budget") else "died"
            for i, cell in enumerate(rest):
                if i == 0 and problem.kind != "closed":
                    results.append(CellResult(cell["id"], status, problem))
                else:
                    results.append(CellResult(cell["id"], "not_run", problem))
        return results

    def call(self, module: str, func: str, *args: Any) -> CallResult:
        """``module.func(student_namespace, *args)`` in the child; arrays travel safely."""
        reply = self._request({"op": "call", "module": module, "func": func, "args": list(args), "timeout": self.limits.timeout})
        if isinstance(reply, Problem):
            return CallResult(False, error=reply)
        if "error" in reply:
            return CallResult(False, error=self._student_problem(reply["error"]))
        if set(reply) != {"result"}:
            return CallResult(False, error=self._kill("protocol", "protocol error: unexpected reply to a call"))
        return CallResult(True, reply["result"])

    def output(self) -> Output:
        """Student stdout+stderr so far (truncated to ``Limits.output_bytes``)."""
        data = bytes(self._out)
        return Output(data.decode("utf-8", "replace"), self._out_total, self._out_total > len(data))

    @property
    def dead(self) -> Problem | None:
        """Why the child is gone, or None while it is usable."""
        return self._dead

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._dead is None:
            try:
                protocol.write_all(self._to_child, protocol.frame(protocol.dumps({"op": "close"})), time.monotonic() + 1)
            except (protocol.ProtocolError, protocol.ChannelTimeout, OSError):
                pass
            if self._server.wait_event(self._sid, ("exit",), 2.0) is None:
                self._send_kill()
        self._release()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------

    def _release(self, notify: bool = True) -> None:
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.cgroup is not None:
            self.cgroup.remove()  # kills what is left of the child's processes, wherever they went
        self._drain.join(timeout=2.0)
        self._server.forget(self._sid)
        if notify:
            self._on_close()

    @property
    def evidence(self) -> list[tuple[str, str]]:
        """``(level, what)`` lines a trusted helper reported on the child's stderr (complete
        once the session is closed), however much the child printed around them."""
        return list(self._evidence)

    def _drain_output(self) -> None:
        """Keep the first N bytes of student output, read and drop the rest (no deadlock);
        pick out evidence lines wherever they are."""
        limit = self.limits.output_bytes
        tail = b""
        try:
            while True:
                chunk = os.read(self._capture, 1 << 16)
                if not chunk:
                    break
                self._out_total += len(chunk)
                room = limit - len(self._out)
                if room > 0:
                    self._out += chunk[:room]
                # a flood is read at full speed: only a chunk holding (the start of) a mark is copied
                if EVIDENCE_MARK in chunk or (tail and EVIDENCE_MARK in tail + chunk[:_TAIL]):
                    for m in _EVIDENCE.finditer(tail + chunk):
                        item = (m.group(1).decode(), m.group(2).decode("utf-8", "replace"))
                        if item not in self._evidence and len(self._evidence) < MAX_EVIDENCE:
                            self._evidence.append(item)
                tail = chunk[-_TAIL:]
        finally:
            os.close(self._capture)

    def _deadline(self) -> float:
        own = time.monotonic() + self.limits.timeout + GRACE_SECONDS
        return own if self.deadline is None else min(own, self.deadline)

    def _out_of_budget(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _timed_out(self, message: str) -> Problem:
        if self._out_of_budget():
            return self._kill("budget", "the submission's time budget ran out")
        return self._kill("timeout", message)

    def _send(self, request: dict) -> Problem | None:
        if self._dead is not None or self._closed:
            return Problem("closed", "SessionClosed", f"session is not usable: {self._dead or 'closed'}")
        data = protocol.frame(protocol.dumps(request))
        try:
            protocol.write_all(self._to_child, data, self._deadline())
        except protocol.ChannelTimeout:
            return self._timed_out("timed out: the child stopped reading requests")
        except protocol.ChannelClosed:
            return self._died()
        return None

    def _receive(self) -> dict | Problem:
        try:
            body = protocol.read_frame(self._from_child, self._deadline(), self.limits.message_bytes)
            reply = protocol.loads(body)
        except protocol.ChannelTimeout:
            return self._timed_out(f"timed out after {self.limits.timeout:g} s")
        except protocol.ChannelClosed:
            return self._died()
        except protocol.ProtocolError as exc:
            return self._kill("protocol", f"protocol error: {exc}")
        if not isinstance(reply, dict):
            return self._kill("protocol", "protocol error: reply is not an object")
        return reply

    def _request(self, request: dict) -> dict | Problem:
        problem = self._send(request)
        return problem if problem is not None else self._receive()

    def _send_kill(self) -> bool:
        """Ask the server to kill the child; False when the server is gone (and with it,
        through their parent-death signal, its children)."""
        try:
            self._server.send({"op": "kill", "sid": self._sid})
            return True
        except SandboxDied:
            return False

    def _server_problem(self) -> Problem:
        return Problem("server", "SandboxDied", f"the sandbox's fork server died while this child ran: "
                                                f"{self._server.death}")

    def _kill(self, kind: str, message: str) -> Problem:
        if self._send_kill():
            self._server.wait_event(self._sid, ("exit",), EXIT_WAIT)
        self._dead = Problem(kind, _PROBLEM_TYPES[kind], message)
        return self._dead

    def _died(self) -> Problem:
        event = self._server.wait_event(self._sid, ("exit",), EXIT_WAIT)
        if event is None and not self._server.alive:
            self._dead = self._server_problem()
            return self._dead
        if event is None:
            self._send_kill()
        reason = _death_reason(event)
        if self.cgroup is not None and self.cgroup.oom_kills():
            reason = (f"child died: out of memory, killed at its memory limit of {self.cgroup.memory_bytes >> 20} MiB "
                      "(shared memory and files in /tmp or /dev/shm count)")
        self._dead = Problem("died", "ChildDied", reason)
        return self._dead

    def _student_problem(self, error: Any) -> Problem:
        if not isinstance(error, dict):
            return Problem("protocol", "ProtocolError", "malformed error report from the child")
        kind = "timeout" if error.get("type") == "TimeoutError" and not error.get("traceback") else "student"
        return Problem(kind, str(error.get("type"))[:100], str(error.get("message"))[:2000], str(error.get("traceback", ""))[:4000])

    def _cell_result(self, cell: dict) -> CellResult:
        status = cell.get("status")
        if status not in ("ok", "error", "timeout"):
            status = "error"
        error = None if status == "ok" else self._student_problem(cell.get("error"))
        notes = cell.get("neutralised")
        notes = tuple(str(n)[:200] for n in notes) if isinstance(notes, list) else ()
        size = cell.get("output_bytes")
        return CellResult(str(cell.get("id")), status, error, notes, size if type(size) is int else 0)


class ChildPool:
    """A warm sandboxed fork server handing out at most ``workers`` concurrent sessions."""

    def __init__(self, workers: int = 2, limits: Limits = Limits(), isolation: str | None = None,
                 private: Sequence[str] = (), cgroups: bool | None = None):
        """``cgroups``: None uses them where the machine allows (``cgroups.detect``), False never."""
        self.workers = workers
        self._private = tuple(private)  # course, submissions: kept from the fallback's children
        self.limits = limits
        self._isolation_request = isolation
        self._free = workers  # session slots not in use
        self._slot_cond = threading.Condition()
        self._closed = False
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: _ForkServer | None = None
        self._preloads: dict[str, str] = {}
        self.server_deaths: list[str] = []  # why each replaced fork server died, in order
        self._launcher = _Launcher()
        # as root, children get per-child uids from a block no other pool on the machine uses
        self._uid_base, self._uid_lock = sandbox.claim_uid_block() if os.geteuid() == 0 else (None, None)
        self._cgroups, self.cgroups_problem = cgroups_module.detect() if cgroups is not False else (None, "turned off")
        try:
            if self._cgroups is not None:
                self._cgroups.weigh_pool(workers)
            self._start()
            if self._cgroups is not None:
                self._check_cgroups()
        except BaseException:
            self._release_uids()
            self._launcher.close()
            if self._cgroups is not None:
                self._cgroups.close()
            raise

    @property
    def limits_mode(self) -> str:
        """How memory (shared memory included) and CPU are bounded per child: ``"cgroup v1"``
        or ``"cgroup v2"`` (a cgroup each), else ``"tmpfs+rlimits"`` (bwrap: size-limited
        tmpfs and IPC namespace, rlimits) or ``"rlimits"``."""
        if self._cgroups is not None:
            return self._cgroups.mode
        return "tmpfs+rlimits" if self._isolation == sandbox.BWRAP else "rlimits"

    def _check_cgroups(self) -> None:
        """One child at start: it must be inside its cgroup, else the pool runs without them
        (and says why in ``cgroups_problem``) rather than believe limits that do not hold."""
        problem = None
        try:
            with self.session() as s:
                cell = s.exec_cells([{"id": "cgroup-check", "source": "pass"}])[0]
                if cell.status != "ok":
                    problem = f"a child could not join its cgroup ({cell.error})"
                elif not s.cgroup.pids():
                    problem = "a child was not inside its cgroup"
        except (SandboxDied, OSError, RuntimeError) as exc:
            problem = f"a child could not start in its cgroup ({exc})"
        if problem is not None:
            self._cgroups.close()
            self._cgroups, self.cgroups_problem = None, problem

    @property
    def isolation(self) -> str:
        """``"bwrap"`` or ``"rlimits-only"`` (the latter must be reported loudly)."""
        return self._isolation

    def _start(self) -> _ForkServer:
        with self._lock:
            if self._closed:
                raise PoolClosed("the runner pool is closed: no new session")
            if self._server is None or not self._server.alive:
                if self._server is not None:
                    self.server_deaths.append(self._server.death or "unknown")
                    self._server.close()
                self._server = self._launcher.call(
                    lambda: _ForkServer(self._isolation_request, self._uid_base, self._private))
                self._isolation = self._server.isolation
                for name, source in list(self._preloads.items()):  # a restarted server gets them again
                    if not self._preload_into(self._server, name, source).ok:
                        del self._preloads[name]  # sessions load it themselves from now on
            return self._server

    def preload(self, name: str, source: str) -> CallResult:
        """Load trusted helper source once in the fork server, before any child exists.

        Every later session starts with module ``name`` (as if ``load_module`` had run), so
        no child compiles it again; a restarted server loads it again. The source must fit
        one control message (about 60 KB); otherwise use ``Session.load_module``.
        """
        server = self._start()
        with self._lock:
            result = self._preload_into(server, name, source)
            if result.ok:
                self._preloads[name] = source
        return result

    @property
    def preloaded(self) -> frozenset:
        """Names of the modules every new session starts with."""
        return frozenset(self._preloads)

    def _preload_into(self, server: _ForkServer, name: str, source: str) -> CallResult:
        sid = next(self._ids)
        request = {"op": "preload", "sid": sid, "name": name, "source": source}
        if len(json.dumps(request).encode()) > protocol.CONTROL_MESSAGE_BYTES:
            return CallResult(False, error=Problem("protocol", "ProtocolError",
                                                   f"module {name!r} is too large to preload"))
        try:
            server.send(request)
        except SandboxDied as exc:
            return CallResult(False, error=Problem("server", "SandboxDied", str(exc)))
        event = server.wait_event(sid, ("preloaded",), self.limits.timeout + GRACE_SECONDS)
        server.forget(sid)
        if event is None:
            return CallResult(False, error=Problem("died", "ChildDied", "the fork server did not answer the preload"))
        if not event.get("ok"):
            return CallResult(False, error=Problem("protocol", "PreloadError", str(event.get("message", ""))))
        return CallResult(True)

    def session(self, limits: Limits | None = None, deadline: float | None = None) -> Session:
        """A fresh isolated child; blocks while ``workers`` sessions are open.

        ``deadline`` (``time.monotonic()``): the session's hard end, whatever its requests'
        timeouts. Raises ``SandboxDied`` when the fork server dies starting the child (the
        next call starts a new server), ``PoolClosed`` at once when the pool is closed, also
        while waiting for a slot."""
        with self._slot_cond:
            while self._free == 0 and not self._closed:
                self._slot_cond.wait()
            if self._closed:
                raise PoolClosed("the runner pool is closed: no new session")
            self._free -= 1
        try:
            limits = limits or self.limits
            sid = next(self._ids)
            cgroup = self._cgroups.child(f"c{sid}", limits.memory_bytes) if self._cgroups is not None else None
            return Session(self._start(), sid, limits, self._release_slot, deadline, cgroup)
        except BaseException:
            self._release_slot()
            raise

    def _release_slot(self) -> None:
        with self._slot_cond:
            self._free += 1
            self._slot_cond.notify()

    def map(self, fn: Callable[[Session, Any], Any], items: Iterable[Any]) -> list:
        """``fn(session, item)`` for each item, each in a fresh session, ``workers`` at a time."""

        def one(item):
            with self.session() as session:
                return fn(session, item)

        with concurrent.futures.ThreadPoolExecutor(self.workers) as executor:
            return list(executor.map(one, items))

    def close(self) -> None:
        with self._slot_cond:
            self._closed = True
            self._slot_cond.notify_all()  # waiters for a slot raise PoolClosed
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None
            if self._cgroups is not None:
                self._cgroups.close()  # kills whatever a session left, then removes them
            self._release_uids()
            self._launcher.close()

    def _release_uids(self) -> None:
        if self._uid_lock is not None:
            os.close(self._uid_lock)  # drops the flock: the block is free for the next pool
            self._uid_lock = None

    def __enter__(self) -> "ChildPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
