"""The sandboxed side of the runner: a fork server and the per-submission request loop.

The parent starts one *zygote* (``zygote_main``) inside the sandbox. It imports NumPy once,
then forks one fresh child per submission on request. Each child isolates itself (own
mount namespace and scratch tmpfs, own uid, rlimits) *before* any student code runs, then
serves requests from the parent over its own pipes (``serve``).

This is the only project code the sandbox imports besides ``protocol``; it uses only the
standard library and NumPy. Trusted helper modules (the public checks) arrive as source.
Nothing here is trusted by the parent: a submission can patch anything in this process,
which at worst corrupts its own answers, and the parent validates every answer.
"""

from __future__ import annotations

import ctypes
import gc
import json
import linecache
import os
import re
import resource
import select
import signal
import socket
import sys
import traceback
import types

import numpy as np

try:
    from . import protocol
except ImportError:  # inside the sandbox, imported as a top-level module
    import protocol

# Private references taken before any student code runs.
_os_write = os.write
_os_exit = os._exit
_dumps = json.dumps
_frame = protocol.frame
_to_wire = protocol.to_wire
_read_frame = protocol.read_frame
_loads = protocol.loads
_setitimer = signal.setitimer
_BaseException = BaseException

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_REC, MS_PRIVATE = 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

MESSAGE_LIMIT = 2000
TRACEBACK_LIMIT = 4000

# Modules a notebook commonly uses, imported once in the zygote so children start warm.
_PRELOAD = ("math", "random", "itertools", "functools", "collections", "typing", "dataclasses")


# --- magics ------------------------------------------------------------------------------

_LINE_MAGIC = re.compile(r"^(\s*)(%[A-Za-z]|!(?!=))")


def neutralise_magics(source: str) -> tuple[str, list[str]]:
    """Replace IPython magics and shell escapes by ``pass``; return the notes to report."""
    stripped = source.lstrip()
    if stripped.startswith("%%"):
        first = stripped.splitlines()[0]
        return "pass\n", [f"cell magic {first[:60]!r} not executed"]
    notes = []
    lines = source.splitlines()
    for i, line in enumerate(lines):
        m = _LINE_MAGIC.match(line)
        if m:
            notes.append(f"line {i + 1}: {line.strip()[:60]!r} not executed")
            lines[i] = m.group(1) + "pass"
    return ("\n".join(lines) + "\n" if notes else source), notes


# --- student-visible output --------------------------------------------------------------


class _Capture:
    """A minimal unbuffered text stream writing to the capture pipe (fd 1 or 2)."""

    encoding = "utf-8"
    errors = "replace"
    total = 0  # shared by stdout and stderr

    def __init__(self, fd: int):
        self._fd = fd

    def write(self, s):
        data = str(s).encode("utf-8", "replace")
        _Capture.total += len(data)
        view = memoryview(data)
        try:
            while view:
                view = view[_os_write(self._fd, view):]
        except OSError:
            pass  # parent stopped listening; output is best effort
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def writable(self):
        return True

    def fileno(self):
        return self._fd


# --- error reports -----------------------------------------------------------------------


def _safe_str(exc) -> str:
    try:
        return str(exc)[:MESSAGE_LIMIT]
    except _BaseException:
        return "<unprintable exception>"


def describe_error(exc: BaseException) -> dict:
    """Type, message and a traceback restricted to student cell frames."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell ")]
        tb = "".join(traceback.format_list(frames))
    except _BaseException:
        tb = ""
    return {
        "type": str(type(exc).__name__)[:100],
        "message": _safe_str(exc),
        "traceback": tb[-TRACEBACK_LIMIT:],
    }


class _CellTimeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _CellTimeout()


# --- the per-submission request loop -----------------------------------------------------


# Trusted helper modules the zygote loaded before forking (``preload``): every child starts
# with them, so none pays to compile them again.
_PRELOADED: dict = {}


def _load_module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<module {name}>"
    sys.modules[name] = module  # before exec: @dataclass looks its module up there
    try:
        exec(compile(source, module.__file__, "exec", dont_inherit=True), module.__dict__)
    except _BaseException:
        sys.modules.pop(name, None)
        raise
    return module


class _Server:
    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd
        self.namespace: dict = {"__name__": "__main__"}
        self.modules: dict = dict(_PRELOADED)

    def send(self, obj) -> None:
        try:
            body = _dumps(_to_wire(obj), separators=(",", ":")).encode("utf-8")
            data = _frame(body)
        except _BaseException as exc:
            body = _dumps({"error": {"type": "ProtocolError", "message": f"cannot send the result: {_safe_str(exc)}", "traceback": ""}})
            data = _frame(body.encode("utf-8"))
        view = memoryview(data)
        while view:
            view = view[_os_write(self.wfd, view):]

    def loop(self) -> None:
        while True:
            try:
                request = _loads(_read_frame(self.rfd))
            except protocol.ChannelClosed:
                return
            op = request.get("op") if isinstance(request, dict) else None
            if op == "close":
                return
            handler = {"load_module": self.load_module, "exec_cells": self.exec_cells, "call": self.call}.get(op)
            if handler is None:
                self.send({"error": {"type": "ProtocolError", "message": f"unknown op {op!r}", "traceback": ""}})
                continue
            handler(request)

    def _run(self, fn, timeout: float):
        """Run ``fn()`` under a soft wall-clock alarm; return (status, value_or_error)."""
        signal.signal(signal.SIGALRM, _on_alarm)
        try:
            try:
                _setitimer(signal.ITIMER_REAL, timeout)
                return "ok", fn()
            finally:
                _setitimer(signal.ITIMER_REAL, 0)
        except _CellTimeout:
            return "timeout", {"type": "TimeoutError", "message": f"took longer than {timeout:g} s", "traceback": ""}
        except _BaseException as exc:
            return "error", describe_error(exc)

    def load_module(self, request) -> None:
        name, source = request["name"], request["source"]

        def load():
            self.modules[name] = _load_module(name, source)

        status, value = self._run(load, float(request.get("timeout", 10)))
        self.send({"ok": True} if status == "ok" else {"error": value})

    def exec_cells(self, request) -> None:
        timeout = float(request.get("timeout", 10))
        for cell in request["cells"]:
            cid = str(cell.get("id"))
            source, notes = neutralise_magics(str(cell.get("source", "")))
            filename = f"<cell {cid}>"
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            before = _Capture.total

            def run():
                exec(compile(source, filename, "exec", dont_inherit=True), self.namespace)

            status, value = self._run(run, timeout)
            self.send({"cell": {
                "id": cid,
                "status": status,
                "error": None if status == "ok" else value,
                "neutralised": notes,
                "output_bytes": _Capture.total - before,
            }})
        self.send({"done": True})

    def call(self, request) -> None:
        module = self.modules.get(request.get("module"))
        if module is None:
            self.send({"error": {"type": "LookupError", "message": f"module {request.get('module')!r} not loaded", "traceback": ""}})
            return
        func = getattr(module, str(request.get("func")), None)
        args = request.get("args", [])
        status, value = self._run(lambda: func(self.namespace, *args), float(request.get("timeout", 10)))
        self.send({"result": value} if status == "ok" else {"error": value})


# --- the fork server ---------------------------------------------------------------------


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _isolate_mounts(scratch: str, uid: int, size: int) -> None:
    """Own mount namespace: a fresh private tmpfs as scratch, /proc hiding other pids."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    opts = f"size={size},nr_inodes=4096,mode=700,uid={uid},gid={uid}".encode()
    _check(_libc.mount(b"tmpfs", scratch.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts), "mount scratch tmpfs")
    _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, b"hidepid=2")


def _set_limits(limits: dict) -> None:
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["nofile"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child_main(config: dict, sid: int, uid: int | None, fds: list[int], limits: dict, close: list[int]) -> None:
    """In the forked child: isolate, drop privileges, then serve. Never returns."""
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for fd in close:
            os.close(fd)
        os.setsid()
        rfd, wfd, capture = fds
        scratch = config["scratch_root"]
        if config["mount_isolation"]:
            _isolate_mounts(scratch, uid, limits["scratch_bytes"])
        else:
            scratch = os.path.join(scratch, f"s{sid}")
            os.mkdir(scratch, 0o700)
            if uid is not None:
                os.chown(scratch, uid, uid)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(capture, 1)
        os.dup2(capture, 2)
        os.close(devnull)
        os.close(capture)
        _set_limits(limits)
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
        os.chdir(scratch)
        os.environ.clear()
        os.environ.update({"HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"})
        sys.stdin = None
        sys.stdout, sys.stderr = _Capture(1), _Capture(2)
        sys.argv = [""]
        _Server(rfd, wfd).loop()
    except _BaseException:
        code = 70
        try:
            os.write(2, traceback.format_exc().encode()[-2000:])
        except _BaseException:
            pass
    _os_exit(code)


class _Zygote:
    def __init__(self, config: dict):
        self.config = config
        self.sock = socket.socket(fileno=config["ctrl_fd"])
        self.children: dict[int, tuple[int, int | None]] = {}  # pid -> (sid, uid)
        base = config.get("uid_base")
        self.free_uids = list(range(base, base + config["uid_count"])) if base is not None else None
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)

    def emit(self, event: dict) -> None:
        self.sock.send(_dumps(event).encode())

    def run(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.sock, self.wake_r], [], [])
            except InterruptedError:
                continue
            if self.wake_r in ready:
                os.read(self.wake_r, 4096)
            self.reap()
            if self.sock in ready:
                msg, fds, _, _ = socket.recv_fds(self.sock, protocol.CONTROL_MESSAGE_BYTES, 4)
                if not msg:
                    return  # parent went away
                self.handle(json.loads(msg), fds)

    def handle(self, request: dict, fds: list[int]) -> None:
        op, sid = request.get("op"), request.get("sid")
        if op == "spawn":
            uid = None
            if self.free_uids is not None:
                if not self.free_uids:
                    self.emit({"event": "error", "sid": sid, "message": "no free sandbox uid"})
                    for fd in fds:
                        os.close(fd)
                    return
                uid = self.free_uids.pop(0)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child_main(self.config, sid, uid, fds, request["limits"],
                            close=[self.sock.fileno(), self.wake_r, self.wake_w])
            for fd in fds:
                os.close(fd)
            self.children[pid] = (sid, uid)
            self.emit({"event": "spawned", "sid": sid, "pid": pid, "uid": uid})
        elif op == "preload":  # trusted source from the parent, run before any student code
            try:
                _PRELOADED[request["name"]] = _load_module(request["name"], request["source"])
                self.emit({"event": "preloaded", "sid": sid, "ok": True})
            except _BaseException as exc:
                self.emit({"event": "preloaded", "sid": sid, "ok": False, "message": _safe_str(exc)[:500]})
        elif op == "kill":
            for pid, (csid, uid) in self.children.items():
                if csid == sid:
                    self.kill_all(pid, uid)

    def kill_all(self, pid: int, uid: int | None) -> None:
        """Kill a child and everything it started."""
        if uid is None:
            for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    target()
                except OSError:
                    pass
            return
        # kill(-1) as the child's uid reaches exactly that uid's processes, however they forked.
        for _ in range(3):
            helper = os.fork()
            if helper == 0:
                try:
                    os.setresuid(uid, uid, uid)
                    os.kill(-1, signal.SIGKILL)
                except _BaseException:
                    pass
                _os_exit(0)
            os.waitpid(helper, 0)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid not in self.children:
                continue
            sid, uid = self.children.pop(pid)
            self.kill_all(pid, uid)  # leftovers (background forks) die with the session
            if uid is not None:
                self.free_uids.append(uid)
            if not self.config["mount_isolation"]:
                _remove_tree(os.path.join(self.config["scratch_root"], f"s{sid}"))
            self.emit({
                "event": "exit",
                "sid": sid,
                "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            })


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def zygote_main() -> None:
    """Entry point inside the sandbox: ``python -c ... <config json>``."""
    config = json.loads(sys.argv[-1])
    for name in _PRELOAD:
        __import__(name)
    np.zeros(3) @ np.ones(3)  # touch BLAS once so children do not pay for it
    gc.collect()
    gc.freeze()
    _Zygote(config).run()
