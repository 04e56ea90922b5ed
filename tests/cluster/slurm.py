"""A real single-node Slurm cluster for the tests, started as root in seconds.

Debian's ``slurmctld``, ``slurmd``, ``slurm-client`` and ``munge`` packages; a generated
``slurm.conf`` in a temporary folder (own ports, own munge socket and key, state and logs
there too), so nothing of the machine's own configuration is used or changed. ``cluster()``
starts ``munged``, ``slurmctld`` and ``slurmd``, waits for the node to be idle, yields the
environment clients need (``SLURM_CONF``), and stops every daemon it started.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch")


def missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if os.geteuid() != 0:
        return "a Slurm cluster needs root (slurmd runs jobs as their users)"
    if all(shutil.which(d) or Path("/usr/sbin", d).exists() for d in DAEMONS):
        return None
    if not shutil.which("apt-get"):
        return "slurm and munge are not installed and there is no apt-get to install them"
    done = subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], capture_output=True, text=True,
                          env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        done = subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], capture_output=True, text=True,
                              env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if done.returncode != 0:
        return f"could not install {' '.join(PACKAGES)}: {done.stderr.strip()[-300:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(d: Path, host: str, munge_socket: Path) -> str:
    ctl, node = _free_port(), _free_port()
    return "\n".join([
        "ClusterName=backprop", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", f"AuthInfo=socket={munge_socket}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none", "SwitchType=switch/none",
        "MpiDefault=none", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "ReturnToService=2",
        f"StateSaveLocation={d / 'state'}", f"SlurmdSpoolDir={d / 'spool'}",
        f"SlurmctldPidFile={d / 'slurmctld.pid'}", f"SlurmdPidFile={d / 'slurmd.pid'}",
        f"SlurmctldLogFile={d / 'slurmctld.log'}", f"SlurmdLogFile={d / 'slurmd.log'}",
        f"SlurmctldPort={ctl}", f"SlurmdPort={node}",
        f"NodeName={host} CPUs={os.cpu_count() or 1} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _wait(predicate, seconds: float, what: str, logs: list[Path]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in logs if p.exists())
    raise RuntimeError(f"the test cluster did not come up: {what}\n{tails}")


@contextlib.contextmanager
def cluster(d: Path | None = None):
    """Start a one-node cluster under ``d`` (default: a new folder in the system's temporary
    folder, removed afterwards: munged runs as its own user and must reach its files, which
    pytest's private ``tmp_path`` does not let it); yield the environment for sbatch/sinfo."""
    if d is None:
        with tempfile.TemporaryDirectory(prefix="backprop-slurm-") as tmp:
            with cluster(Path(tmp)) as env:
                yield env
        return
    d = Path(d)
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool", "munge"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    munge_dir, munge_socket = d / "munge", d / "munge" / "munge.socket"
    key = munge_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(d, 0o755)
    shutil.chown(munge_dir, "munge", "munge")
    shutil.chown(key, "munge", "munge")
    os.chmod(munge_dir, 0o711)  # munged insists clients can reach its socket
    os.chmod(key, 0o600)
    conf = d / "slurm.conf"
    conf.write_text(_conf(d, host, munge_socket))
    env = dict(os.environ, SLURM_CONF=str(conf))
    started: list[Path] = []
    try:
        subprocess.run(["runuser", "-u", "munge", "--", _sbin("munged"), f"--socket={munge_socket}",
                        f"--key-file={key}", f"--pid-file={munge_dir / 'munged.pid'}",
                        f"--log-file={munge_dir / 'munged.log'}", f"--seed-file={munge_dir / 'seed'}"],
                       check=True, capture_output=True, timeout=30)
        started.append(munge_dir / "munged.pid")
        _wait(munge_socket.exists, 10, "munged socket", [munge_dir / "munged.log"])
        subprocess.run([_sbin("slurmctld"), "-f", str(conf)], check=True, capture_output=True, env=env, timeout=30)
        started.append(d / "slurmctld.pid")
        subprocess.run([_sbin("slurmd"), "-f", str(conf)], check=True, capture_output=True, env=env, timeout=30)
        started.append(d / "slurmd.pid")

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env)
            return out.returncode == 0 and out.stdout.strip() in ("idle", "mixed")

        _wait(idle, 60, "node idle", [d / "slurmctld.log", d / "slurmd.log"])
        yield env
    finally:
        for pidfile in reversed(started):
            _stop(pidfile)


def _stop(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
