"""Hidden cases fresh per student and per attempt, reproducible (``grader.grading.seeds``).

A course made by the real ``backprop generate`` CLI, real notebooks graded by the real
``backprop grade`` CLI in the sandbox. The same notebook handed in by many students faces other
hidden cases for each (the records' seeds, and the cases rebuilt from them, differ) and earns
full marks every time; grading it again gives the same records; an edited notebook faces new
cases; a recorded key reproduces a verdict anywhere; a course without a secret warns; student
code finds the secret nowhere (file, environment, /proc), with bubblewrap and without.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.authoring.assignment import load_assignment
from grader.checks import hidden
from grader.grading import sample, seeds
from grader.runner import available_isolation

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "tensor_edf"
FIXED = bytes(range(1, 33))  # the module's courses grade with this secret: the same cases every run
STUDENTS = ["alice", "bob"] + [f"s{i:02d}" for i in range(12)]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=1200)


def grade(submitted: Path, course: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    done = cli("grade", str(submitted), "--assignment", ASSIGNMENT, "--course", str(course), "--out", str(out),
               "--no-nbgrader", "--no-report", "--timeout", "5", *extra, env=env)
    assert done.returncode == 0, done.stderr
    return done


def record(out: Path, student: str) -> dict:
    return json.loads((out / "submissions" / f"{student}.json").read_text())


def suite_test(test_id: str) -> dict:
    return next(t.table for t in load_assignment(ASSIGNMENT).tests if t.table["id"] == test_id)


def cases_from(entry: dict) -> list:
    """The hidden specs of a record's test, rebuilt from the seeds the record names."""
    table = suite_test(entry["id"])
    return hidden.build_specs(dict(table, hidden=dict(table["hidden"], seeds=entry["seeds"])))


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict:
    """``backprop generate`` run as a TA runs it; its random secret kept aside for the checks,
    then replaced by FIXED so that every run of these tests grades the same cases."""
    course = tmp_path_factory.mktemp("seeds") / "course"
    done = cli("generate", ASSIGNMENT, "--course", str(course))
    assert done.returncode == 0, done.stderr
    path = seeds.secret_path(course)
    generated = {"bytes": path.read_bytes(), "mode": stat.S_IMODE(path.stat().st_mode),
                 "dir_mode": stat.S_IMODE(path.parent.stat().st_mode)}
    path.write_text(FIXED.hex() + "\n")
    nb = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
    return {"path": course, "generated": generated, "nb": nb}


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory) -> dict:
    """The correct notebook, byte for byte the same, handed in by every one of STUDENTS."""
    root = tmp_path_factory.mktemp("class")
    for s in STUDENTS:
        sample.write(course["nb"], root / "submitted" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    out = root / "out"
    grade(root / "submitted", course["path"], out, "--quiet")
    return {"root": root, "submitted": root / "submitted", "out": out, "course": course["path"],
            "records": {s: record(out, s) for s in STUDENTS}}


def test_generate_creates_a_private_secret_outside_the_release(course):
    g = course["generated"]
    hexed = g["bytes"].strip()
    assert len(bytes.fromhex(hexed.decode())) == seeds.SECRET_BYTES
    assert g["mode"] == 0o600 and g["dir_mode"] == 0o700
    leaks = [p for p in course["path"].rglob("*") if p.is_file() and ".backprop" not in p.parts
             and (hexed in p.read_bytes() or bytes.fromhex(hexed.decode()) in p.read_bytes())]
    assert not leaks  # not in release/, source/, the gradebook or the config
    assert not (course["path"] / "release" / ASSIGNMENT / ".backprop").exists()


def test_a_secret_is_made_once_and_differs_between_courses(tmp_path):
    # in a fresh interpreter: the real generator, not this test session's fixed one
    code = ("import sys; from grader.grading.seeds import ensure_secret\n"
            "for d in sys.argv[1:]: ensure_secret(d)")
    a, b = tmp_path / "a", tmp_path / "b"
    subprocess.run([sys.executable, "-c", code, str(a), str(b)], check=True, cwd=REPO)
    first = seeds.load_secret(a)
    subprocess.run([sys.executable, "-c", code, str(a)], check=True, cwd=REPO)
    assert seeds.load_secret(a) == first  # generating again keeps it: records keep their meaning
    assert seeds.load_secret(b) != first and len(first) == seeds.SECRET_BYTES
    assert seeds.load_secret(tmp_path / "none") is None
    (b / ".backprop" / "secret").write_text("not hex\n")
    with pytest.raises(seeds.SecretError, match="cannot be read"):
        seeds.load_secret(b)


def test_same_notebook_different_students_face_different_cases(graded):
    recs = graded["records"]
    assert all(r["total"] == r["max"] == 26 for r in recs.values()), {s: r["total"] for s, r in recs.items()}
    keys = {s: r["hidden_seed"]["key"] for s, r in recs.items()}
    assert all(r["hidden_seed"]["from"] == "course secret" for r in recs.values())
    assert len(set(keys.values())) == len(STUDENTS)
    assert len({r["sha256"] for r in recs.values()}) == 1
    alice, bob = ({t["id"]: t for t in recs[s]["tests"]} for s in ("alice", "bob"))
    # every test's seeds come from the key, by the one mixing the audit checks
    for tid, entry in alice.items():
        assert entry["seeds"] == hidden.hidden_seeds(hidden.seeded(suite_test(tid), keys["alice"]))
    assert alice["add"]["seeds"] != bob["add"]["seeds"]
    assert alice["add"]["seeds"] != suite_test("add")["hidden"]["seeds"]
    # and the cases themselves: Add's first operand in alice's first case is not bob's
    a_case, b_case = cases_from(alice["add"])[0], cases_from(bob["add"])[0]
    assert a_case["operands"][0].shape == b_case["operands"][0].shape
    assert not np.allclose(a_case["operands"][0], b_case["operands"][0])


def test_regrading_gives_the_same_records(graded):
    before = {s: (graded["out"] / "submissions" / f"{s}.json").read_text() for s in STUDENTS}
    done = grade(graded["submitted"], graded["course"], graded["out"], "--force", "--json")
    assert json.loads(done.stdout)["graded_now"] == len(STUDENTS)
    for s, text in before.items():
        old, new = json.loads(text), record(graded["out"], s)
        old.pop("seconds"), new.pop("seconds")  # a timing, not a verdict
        assert json.dumps(new, sort_keys=True) == json.dumps(old, sort_keys=True), s


def test_an_edited_notebook_faces_new_cases(graded, course, tmp_path):
    edited = sample.add_cell(course["nb"], "# one more try\nprint('hello')\n")
    sample.write(edited, tmp_path / "submitted" / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    grade(tmp_path / "submitted", course["path"], tmp_path / "out", "--quiet")
    old, new = graded["records"]["bob"], record(tmp_path / "out", "bob")
    assert new["sha256"] != old["sha256"] and new["total"] == new["max"]
    assert new["hidden_seed"]["key"] != old["hidden_seed"]["key"]
    changed = [t["id"] for t, u in zip(old["tests"], new["tests"]) if t["seeds"] != u["seeds"]]
    assert changed == [t["id"] for t in old["tests"]]


BUGGY = sample.CORPUS / "buggy" / "sigmoid_upstream_ignored.py"


def test_a_recorded_key_reproduces_a_verdict_anywhere(course, tmp_path):
    """A TA reruns one notebook, renamed and elsewhere, with the key its record gives."""
    buggy = sample.with_variant(course["nb"], BUGGY)
    sample.write(buggy, tmp_path / "submitted" / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    grade(tmp_path / "submitted", course["path"], tmp_path / "out", "--quiet")
    carol = record(tmp_path / "out", "carol")
    failed = [t for t in carol["tests"] if t["points"] < t["max_points"]]
    assert [t["id"] for t in failed] == ["sigmoid"] and "got" in json.dumps(failed[0]["result"]["details"])

    copy = sample.write(buggy, tmp_path / "elsewhere" / "renamed.ipynb")
    key = str(carol["hidden_seed"]["key"])
    grade(copy, course["path"], tmp_path / "rerun", "--quiet", "--hidden-seed", key)
    again = record(tmp_path / "rerun", "renamed")
    assert again["hidden_seed"] == {"key": carol["hidden_seed"]["key"], "from": "given"}
    assert again["tests"] == carol["tests"]  # the same cases, the same verdicts, word for word
    # without the key, the file's new name makes it another student, with other cases
    grade(copy, course["path"], tmp_path / "plain", "--quiet")
    plain = {t["id"]: t for t in record(tmp_path / "plain", "renamed")["tests"]}
    assert plain["sigmoid"]["seeds"] != failed[0]["seeds"]


def test_without_a_secret_every_student_gets_the_suites_seeds_and_the_ta_is_warned(course, tmp_path):
    old = tmp_path / "course"
    shutil.copytree(course["path"], old, ignore=shutil.ignore_patterns(seeds.SECRET_DIR, "gradebook.db"))
    for s in ("alice", "bob"):
        sample.write(course["nb"], tmp_path / "submitted" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    done = grade(tmp_path / "submitted", old, tmp_path / "out", "--quiet")
    assert "WARNING: no course secret" in done.stderr and str(seeds.secret_path(old)) in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert any(m.startswith("WARNING: no course secret") for m in summary["messages"])
    recs = [record(tmp_path / "out", s) for s in ("alice", "bob")]
    for r in recs:
        assert r["hidden_seed"] == {"key": None, "from": "suite"} and r["total"] == r["max"]
        assert {t["id"]: t["seeds"] for t in r["tests"]}["add"] == suite_test("add")["hidden"]["seeds"]
    assert [t["seeds"] for t in recs[0]["tests"]] == [t["seeds"] for t in recs[1]["tests"]]
    # the terminal summary says it too
    done = grade(tmp_path / "submitted", old, tmp_path / "out")
    assert "WARNING: no course secret" in done.stdout


# Student code hunting for the course secret: the file itself (by its absolute path, through
# every process's root and working directory in /proc), and every environment and command line
# it can see. It reports every 64-hex-digit string it found (the secret's form) and how much it
# could read, so the test sees both that it ran and what it got.
HUNT = r'''
import os, re
_found, _read = set(), []
def _look(name, data):
    _read.append(name)
    _found.update(re.findall(r"[0-9a-f]{{64}}", data.decode("latin-1")))
_paths = [{secret!r}, {secret_dir!r}, os.path.expanduser("~/.backprop/secret")]
for _pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self"]:
    _paths += [f"/proc/{{_pid}}/environ", f"/proc/{{_pid}}/cmdline", f"/proc/{{_pid}}/cwd/.backprop/secret",
               f"/proc/{{_pid}}/root{secret}"]
for _p in _paths:
    try:
        with open(_p, "rb") as _f:
            _look(_p, _f.read(1 << 20))
    except Exception:
        pass
_look("os.environ", " ".join(f"{{k}}={{v}}" for k, v in os.environ.items()).encode())
_own = "/proc/self/cmdline" in _read and "os.environ" in _read
raise RuntimeError(f"HUNTED read={{len(_read)}} own={{_own}} hex={{sorted(_found)}} files={{_read[:12]}}")
'''


@pytest.mark.parametrize("isolation", ["bwrap", "rlimits-only"])
def test_student_code_cannot_read_the_secret(course, tmp_path, isolation):
    if isolation == "bwrap" and available_isolation() != "bwrap":
        pytest.skip("bubblewrap is not usable here; the rlimits-only case covers this machine")
    if isolation == "rlimits-only" and os.geteuid() != 0:
        pytest.skip("the rlimits-only fallback keeps the course from student code by uid: root only")
    secret = seeds.secret_path(course["path"])
    hostile = sample.add_cell(course["nb"], HUNT.format(secret=str(secret), secret_dir=str(secret.parent)))
    sample.write(hostile, tmp_path / "submitted" / "mallory" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    env = dict(os.environ, BACKPROP_ISOLATION=isolation) if isolation == "rlimits-only" else None
    grade(tmp_path / "submitted", course["path"], tmp_path / "out", "--quiet", env=env)
    rec = record(tmp_path / "out", "mallory")
    assert rec["isolation"] == isolation
    hunt = next(c for c in rec["cells"] if c["id"].startswith("added-"))  # grading names added cells
    # it ran, and is not blind: its own command line and environment it did read
    assert "HUNTED read=" in hunt["error"] and "own=True" in hunt["error"], hunt["error"]
    text = json.dumps(rec)
    assert FIXED.hex() not in text and seeds.read_secret(secret).hex() not in text
    assert rec["total"] == rec["max"]  # the rest of the notebook is graded as ever
