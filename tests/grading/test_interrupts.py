"""Interrupts, faults and broken input (issue 13.7): Ctrl-C, an unwritable output folder and a
full disk each end in one line saying what is saved and that rerunning resumes; output files
follow the umask."""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.files import WriteError, write_atomic
from grader.grading import sample

REPO = Path(__file__).resolve().parents[2]
A = "tensor_edf"


def _class(nb: dict, root: Path, n: int) -> Path:
    variants = [nb] + [v for p in sample.corpus("buggy")[:n] if (v := sample.with_variant(nb, p)) is not None]
    for i in range(n):
        sample.write(variants[i % len(variants)], root / f"s{i:02d}.ipynb")
    return root


def _grade_cmd(cls: Path, course: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli", "grade", str(cls), "--assignment", A, "--course", str(course),
            "--out", str(out), "--no-nbgrader", "--timeout", "2", *extra]


def _modes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}


def test_ctrl_c_mid_batch_says_what_is_saved_and_the_rerun_finishes(course, submitted_nb, tmp_path):
    cls, out = _class(submitted_nb, tmp_path / "class", 10), tmp_path / "out"
    # as a terminal's Ctrl-C does: SIGINT to the whole foreground process group; umask 002 (a TA's group)
    umask = lambda: os.umask(0o002)  # noqa: E731
    proc = subprocess.Popen(_grade_cmd(cls, course, out, "--workers", "1"), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=umask)
    deadline = time.monotonic() + 300
    while len(list((out / "submissions").glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    saved = sorted((out / "submissions").glob("*.json"))
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    m = re.search(r"interrupted: (\d+) of 10 saved; rerun the same command to continue", stderr)
    assert m and int(m[1]) == len(saved) and 2 <= len(saved) < 10, stderr
    assert not (out / "gradebook.csv").exists()
    # nothing the interrupt cut short was saved as a verdict
    assert all(json.loads(p.read_text())["status"] == "graded" for p in saved)

    r = subprocess.run(_grade_cmd(cls, course, out, "--json"), cwd=REPO, capture_output=True, text=True,
                       check=True, preexec_fn=umask)
    summary = json.loads(r.stdout)
    assert summary["reused"] == len(saved) and summary["graded_now"] == 10 - len(saved)
    modes = _modes(out)
    for name in ("gradebook.csv", "results.json", "summary.json", "submissions/s00.json", "feedback/s00.md",
                 "feedback/s00.html", "report/index.html", "report/pass_matrix.csv"):
        assert modes[name] == 0o664, (name, oct(modes[name]))


def test_an_unwritable_output_folder_is_one_line_before_any_grading(course, submitted_nb, tmp_path):
    cls = _class(submitted_nb, tmp_path / "class", 2)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    outs = [blocker / "out"]
    if os.geteuid() != 0:  # root writes through permission bits
        ro = tmp_path / "read-only"
        ro.mkdir(mode=0o555)
        outs.append(ro / "out")
    for out in outs:
        r = subprocess.run(_grade_cmd(cls, course, out), cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"backprop grade: could not write {out}"), r.stderr
        assert "rerun the same command to resume" in lines[0]


def test_a_full_disk_while_writing_outputs_keeps_the_records_and_the_rerun_resumes(
        course, submitted_nb, tmp_path, monkeypatch, capsys):
    import grader.files
    from grader.cli import main

    cls, out = _class(submitted_nb, tmp_path / "class", 3), tmp_path / "out"
    real_replace = os.replace

    def full_disk(src, dst, *a, **k):
        if str(dst).endswith("gradebook.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(grader.files.os, "replace", full_disk)
    args = [*_grade_cmd(cls, course, out)[3:], "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"backprop grade: could not write {out / 'gradebook.csv'}: No space left on device; 3 of 3 "
                   "submissions are saved, rerun the same command to resume once it can be written"]
    assert len(list((out / "submissions").glob("*.json"))) == 3
    assert not list(out.glob(".*.tmp"))  # the half-written file is gone

    monkeypatch.setattr(grader.files.os, "replace", real_replace)
    assert main([*args[:-1], "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["reused"] == 3 and summary["graded_now"] == 0 and (out / "gradebook.csv").is_file()


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_the_atomic_writer_follows_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        write_atomic(tmp_path / "x.txt", "hello")
        write_atomic(tmp_path / "x.txt", "again", fsync=True)  # replacing keeps following it
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o666 & ~mask
    assert (tmp_path / "x.txt").read_text() == "again"


def test_the_writer_names_the_file_it_could_not_write(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(WriteError) as e:
        write_atomic(tmp_path / "f" / "out.csv", "x")
    assert str(e.value).startswith(f"could not write {tmp_path / 'f' / 'out.csv'}: ")
