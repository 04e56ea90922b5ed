"""The sandboxed side of the runner: a fork server and the per-submission request loop.

The parent starts one *zygote* (``zygote_main``) inside the sandbox. It imports NumPy once,
then forks one fresh child per submission on request. Each child isolates itself *before*
any student code runs (with bwrap: its own pid, mount, IPC, network, UTS and user
namespaces, ``_setup_box``; always its own uid where root, rlimits, no capabilities, not
dumpable), then serves requests from the parent over its own pipes (``serve``).

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
_getpid = os.getpid
_dumps = json.dumps
_frame = protocol.frame
_to_wire = protocol.to_wire
_read_frame = protocol.read_frame
_loads = protocol.loads
_setitimer = signal.setitimer
_BaseException = BaseException

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
BOX_HOSTNAME = b"sandbox"

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
        self.pid = _getpid()
        self.namespace: dict = {"__name__": "__main__"}
        self.modules: dict = dict(_PRELOADED)

    def send(self, obj) -> None:
        if _getpid() != self.pid:
            # a copy forked by student code (a fork bomb's leftovers) ends here instead of
            # answering too, which would garble the channel for the real server
            _os_exit(0)
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


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = lambda v: None if v is None else v.encode()  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _read_only(target: str, bind: bool) -> None:
    if bind:
        _mount(target, target, None, MS_BIND | MS_REC, None)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def _ipc_limits(shm_bytes: int) -> dict[str, int]:
    """SysV IPC limits of the child's own IPC namespace: shared memory never beyond ``shm_bytes``."""
    page = os.sysconf("SC_PAGE_SIZE")
    return {
        "kernel/shmmax": shm_bytes,
        "kernel/shmall": max(1, shm_bytes // page),  # total over all segments, in pages
        "kernel/shmmni": 16,
        "kernel/msgmni": 8,  # message queues: 8 x 16 KiB
        "kernel/msgmnb": 16384,
    }


def _setup_box(scratch: str, owner: int, limits: dict) -> None:
    """In the child (pid 2 of its own pid namespace), still privileged, before any student
    code: own mount, IPC, network and UTS namespaces; a fresh /proc showing only this
    child's processes; size-limited tmpfs for scratch and /dev/shm; IPC limits; the rest of
    the file system read-only."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={limits['scratch_bytes']},nr_inodes=4096,mode=700,uid={owner},gid={owner}")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           f"size={limits['shm_bytes']},nr_inodes=1024,mode=1777")
    for name, value in _ipc_limits(limits["shm_bytes"]).items():
        _write(f"/proc/sys/{name}", str(value))
    _check(_libc.sethostname(BOX_HOSTNAME, len(BOX_HOSTNAME)), "sethostname")
    # bwrap's root tmpfs (/opt, /etc) and /dev would be writable by the sandbox uid as an
    # ordinary user; the IPC limits just set must stay as they are (/proc/sys/user stays
    # writable for the student's own user namespace, ``_own_user_namespace``).
    _read_only("/", bind=False)
    _read_only("/dev", bind=False)
    for tree in ("/proc/sys/kernel", "/proc/sys/fs"):
        _read_only(tree, bind=True)


def _own_user_namespace() -> None:
    """A user namespace of the student's own, in which it may create no namespace at all.

    Without it an unprivileged student could unshare a user namespace and, in it, a fresh
    IPC namespace or tmpfs with no size limit. It also gives each child its own
    RLIMIT_NPROC count where children share a uid (bwrap as an ordinary user). Where
    user namespaces are unavailable the student cannot create one either."""
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER) != 0:
        return
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # /proc/self/*_map belong to root otherwise
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    except PermissionError:
        return  # no capabilities in a new user namespace (e.g. an LSM policy): none for the student either
    for kind in ("user", "ipc", "mnt", "net", "pid", "uts", "cgroup", "time"):
        try:
            _write(f"/proc/sys/user/max_{kind}_namespaces", "0")
        except FileNotFoundError:
            pass


def _drop_capabilities() -> None:
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 1:
            break  # EINVAL: past the last capability (EPERM: no CAP_SETPCAP, capset suffices)
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    _check(_libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")


def _open_import_dirs() -> dict[str, int]:
    """``{sys.path entry: descriptor}``, opened by the (root) server: the fallback's children
    run as another uid, which may not reach the interpreter by name (e.g. under /root/.pyenv)."""
    fds = {}
    for entry in sys.path:
        if entry and entry not in fds and os.path.isdir(entry):
            fds[entry] = os.open(entry, os.O_PATH | os.O_DIRECTORY)
    return fds


def _reroute_imports(dir_fds: dict[str, int]) -> None:
    """After dropping to the sandbox uid: import from what it cannot reach by name through the
    server's descriptors (``/proc/self/fd/N`` starts the lookup inside the directory, so only
    the directories below it need to be readable, not /root above it)."""
    moved = {p: f"/proc/self/fd/{fd}" for p, fd in dir_fds.items() if not os.access(p, os.R_OK | os.X_OK)}
    if not moved:
        return
    order = sorted(moved, key=len, reverse=True)

    def move(path):
        for old in order:
            if path == old or path.startswith(old + os.sep):
                return moved[old] + path[len(old):]
        return path

    sys.path[:] = [move(p) for p in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [move(p) for p in search]
    sys.path_importer_cache.clear()


_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR = 1, 7
KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -4, -5


def _fresh_keyrings() -> None:
    """Kernel keyrings belong to a uid and outlive its processes: empty what an earlier child
    with this uid left (the fallback reuses a pool's uids), and start a session keyring of
    its own. Best effort: where keyctl is unavailable, so it is to the student."""
    if _SYS_KEYCTL is None:
        return
    for ring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        _libc.syscall(_SYS_KEYCTL, KEYCTL_CLEAR, ring)
    _libc.syscall(_SYS_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, None)


def _set_limits(limits: dict) -> None:
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["nofile"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))  # POSIX message queues: none
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))


def _die_with_server(server_pid: int | None) -> None:
    """SIGKILL when the fork server dies, and now if it already has: a child whose server is
    gone must not go on serving (its session ends with the server, deterministically).
    ``server_pid``: None in a box, where the server lies outside the child's pid namespace
    (``getppid()`` is 0 while it lives; 1, the namespace's init, once it died)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != (0 if server_pid is None else server_pid):
        os.kill(os.getpid(), signal.SIGKILL)


def _child_main(config: dict, sid: int, uid: int | None, fds: list[int], limits: dict, close: list[int],
                dir_fds: dict[str, int], server_pid: int) -> None:
    """In the forked child: isolate, drop privileges, then serve. Never returns."""
    code = 0
    server = None if config["box"] else server_pid
    try:
        _die_with_server(server)
        cgroup_procs, fds = fds[3:], fds[:3]
        for fd in cgroup_procs:  # first of all: everything this child ever runs is in its cgroup
            os.write(fd, b"0")
            os.close(fd)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for fd in close:
            os.close(fd)
        os.setsid()
        rfd, wfd, capture = fds
        scratch = config["scratch_root"]
        box = config["box"]
        if box:
            _setup_box(scratch, uid if uid is not None else os.getuid(), limits)
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
        if uid is not None:
            os.setgroups([] if box else [config["sandbox_gid"]])  # the group the private paths deny
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        if box:
            _own_user_namespace()
        elif dir_fds:
            _reroute_imports(dir_fds)
        _fresh_keyrings()
        _set_limits(limits)  # after the user namespace: its RLIMIT_NPROC count is this child's own
        _drop_capabilities()
        _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no ptrace, /proc/<pid>/mem, process_vm_readv
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _die_with_server(server)  # again: setuid cleared it
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
        self.children: dict[int, tuple[int, int | None, int | None]] = {}  # pid -> (sid, uid, its init's pid)
        self.inits: set[int] = set()  # inits not reaped yet (their pids are still theirs to kill)
        base = config.get("uid_base")
        self.free_uids = list(range(base, base + config["uid_count"])) if base is not None else None
        self.pid = os.getpid()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        # each child is pid 1 of a new pid namespace; after forking it the server returns here
        self.pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY) if config["box"] else None
        self.sleep = next((p for p in ("/usr/bin/sleep", "/bin/sleep") if os.path.exists(p)), None)
        if config["box"] and self.sleep is None:
            raise RuntimeError("no sleep(1) in /usr/bin or /bin for the children's pid namespace init")
        os.set_inheritable(self.sock.fileno(), False)  # not into the inits
        self.dir_fds = _open_import_dirs() if not config["box"] and base is not None else {}
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)

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
                msg, fds, _, _ = socket.recv_fds(self.sock, protocol.CONTROL_MESSAGE_BYTES, 8)
                if not msg:
                    return  # parent went away
                self.handle(json.loads(msg), fds)

    def _fork(self) -> tuple[int, int | None]:
        """``(pid, init)``: with a box, the child is pid 2 of a new pid namespace whose pid 1
        (``init``) is a sleep(1) the student cannot signal; killing that init makes the kernel
        kill every process of the namespace. Spawned, not forked: it costs no copy of the
        server."""
        if self.pid_ns is None:
            return os.fork(), None
        _check(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
        init = pid = None
        try:
            init = os.posix_spawn(self.sleep, [self.sleep, "2147483647"], {})
            pid = os.fork()
        finally:
            if pid != 0:
                _check(_libc.setns(self.pid_ns, CLONE_NEWPID), "setns(pid)")
                if init is not None and pid is None:  # the fork failed: the namespace goes
                    os.kill(init, signal.SIGKILL)
                    os.waitpid(init, 0)
        if pid:
            self.inits.add(init)
        return pid, init

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
            for fd in fds:
                os.set_inheritable(fd, False)  # not into the init
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                pid, init = self._fork()
            except OSError as exc:  # e.g. out of processes or memory: this child fails, the server goes on
                for fd in fds:
                    os.close(fd)
                if uid is not None:
                    self.free_uids.append(uid)
                self.emit({"event": "error", "sid": sid, "message": f"cannot start a child: {_safe_str(exc)[:300]}"})
                return
            if pid == 0:
                close = [self.sock.fileno(), self.wake_r, self.wake_w] + ([self.pid_ns] if self.pid_ns is not None else [])
                _child_main(self.config, sid, uid, fds, request["limits"], close, self.dir_fds, self.pid)
            for fd in fds:
                os.close(fd)
            self.children[pid] = (sid, uid, init)
            self.emit({"event": "spawned", "sid": sid, "pid": pid, "uid": uid})
        elif op == "preload":  # trusted source from the parent, run before any student code
            try:
                _PRELOADED[request["name"]] = _load_module(request["name"], request["source"])
                self.emit({"event": "preloaded", "sid": sid, "ok": True})
            except _BaseException as exc:
                self.emit({"event": "preloaded", "sid": sid, "ok": False, "message": _safe_str(exc)[:500]})
        elif op == "kill":
            for pid, (csid, uid, init) in self.children.items():
                if csid == sid:
                    self.kill_all(pid, uid, init)

    def kill_all(self, pid: int, uid: int | None, init: int | None = None) -> None:
        """Kill a child and everything it started."""
        if init is not None:
            # pid 1 of the child's namespace: when it dies the kernel kills every process in it.
            # Not waited for here: it exits only once the child (ours to reap) is reaped.
            if init in self.inits:  # not reaped yet, so the pid is still its own
                os.kill(init, signal.SIGKILL)
            return
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
            if pid in self.inits:  # killed with its child's session, or by kill_all
                self.inits.discard(pid)
                continue
            if pid not in self.children:
                continue
            sid, uid, init = self.children.pop(pid)
            self.kill_all(pid, uid, init)  # leftovers (background forks, daemons) die with the session
            if uid is not None:
                self.free_uids.append(uid)
            if init is None:
                _remove_tree(os.path.join(self.config["scratch_root"], f"s{sid}"))
                if uid is not None:
                    _sweep(uid)
            self.emit({
                "event": "exit",
                "sid": sid,
                "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            })


# Places every uid may write on a host without namespaces: what a child leaves there could
# reach a later child (rlimits-only fallback as root sweeps them when the child ends).
_SHARED_DIRS = ("/dev/shm", "/tmp", "/var/tmp")
_SYSV = (("shm", 7), ("msg", 7), ("sem", 4))  # /proc/sysvipc/<kind> and the column of the owner's uid
IPC_RMID = 0


def _sweep(uid: int) -> None:
    """Remove what ``uid`` left in shared places: SysV IPC objects, files in /dev/shm, /tmp."""
    for kind, uid_col in _SYSV:
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                rows = [line.split() for line in f.readlines()[1:]]
        except OSError:
            continue
        for row in rows:
            try:
                ident, owner, creator = int(row[1]), int(row[uid_col]), int(row[uid_col + 2])
            except (IndexError, ValueError):
                continue
            if uid in (owner, creator):
                if kind == "shm":
                    _libc.shmctl(ident, IPC_RMID, None)
                elif kind == "msg":
                    _libc.msgctl(ident, IPC_RMID, None)
                else:
                    _libc.semctl(ident, 0, IPC_RMID)
    for directory in _SHARED_DIRS:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    _remove_tree(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# Standard-library modules a notebook may import lazily; the fallback checks them at start.
_PROBE_IMPORTS = ("uuid", "secrets", "decimal", "fractions", "statistics", "json", "tempfile", "encodings.idna")


def _probe_fallback(config: dict, dir_fds: dict[str, int]) -> list[str]:
    """What a fallback child (as the sandbox uid) could not import, or could read but must not."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        problems = []
        try:
            os.close(r)
            uid = config["uid_base"]
            if uid is not None:
                os.setgroups([config["sandbox_gid"]])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                _reroute_imports(dir_fds)
            for name in _PROBE_IMPORTS:
                try:
                    __import__(name)
                except _BaseException as exc:
                    problems.append(f"a child cannot import the standard library ({name}: {_safe_str(exc)[:200]})")
            for path in config["private"]:
                try:
                    os.listdir(path) if os.path.isdir(path) else open(path, "rb").close()
                    problems.append(f"a child can read {path}")
                except OSError:
                    pass
        except _BaseException as exc:
            problems.append(f"probe failed: {_safe_str(exc)[:300]}")
        os.write(w, _dumps(problems).encode()[:60000])
        _os_exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return json.loads(data)
    except ValueError:
        return ["probe failed: no answer"]


def zygote_main() -> None:
    """Entry point inside the sandbox: ``python -c ... <config json>``."""
    config = json.loads(sys.argv[-1])
    for name in _PRELOAD:
        __import__(name)
    np.zeros(3) @ np.ones(3)  # touch BLAS once so children do not pay for it
    gc.collect()
    gc.freeze()
    zygote = _Zygote(config)
    problems = [] if config["box"] else _probe_fallback(config, zygote.dir_fds)
    if problems:  # the parent refuses to grade: say exactly why
        remedy = ("install bubblewrap (bwrap) with user namespaces, or grade as root" if config["uid_base"] is None
                  else "make these unreadable to other users, or install bubblewrap (bwrap)")
        zygote.emit({"event": "refused", "sid": 0, "message": "; ".join(problems) + f". Without bwrap: {remedy}."})
        sys.exit(1)
    zygote.emit({"event": "ready", "sid": 0})
    zygote.run()
