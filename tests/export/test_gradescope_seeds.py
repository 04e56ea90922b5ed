"""The Gradescope bundle's hidden seeds: the course secret travels inside the bundle, each
submitter (Gradescope's user ids in submission_metadata.json) and each notebook version faces
its own cases, the staff see the key, and student code cannot read the secret in the container.
Run for real: `backprop export gradescope`, unzipped under a temporary root, `run_autograder`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.export import gradescope
from grader.grading import sample, seeds
from grader.runner import available_isolation

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "tensor_edf"
MAX = 26.0


def export(out: Path, *extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "grader.cli", "export", "gradescope", ASSIGNMENT, "--out", str(out),
                           *extra], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def bundle(course, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gs-seeds") / "autograder.zip"
    export(out, "--course", str(course))
    return out


@pytest.fixture(scope="module")
def correct(course) -> bytes:
    return json.dumps(sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))).encode()


def run(bundle: Path, root: Path, notebook: bytes, users: list[dict], isolation: str | None = None) -> dict:
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    (root / "submission").mkdir(parents=True)
    (root / "submission" / f"{ASSIGNMENT}.ipynb").write_bytes(notebook)
    (root / "submission_metadata.json").write_text(json.dumps({"id": 99, "users": users}))
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), BACKPROP_PYTHON=sys.executable)
    env.pop("PYTHONPATH", None)
    if isolation:
        env["BACKPROP_ISOLATION"] = isolation
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return json.loads((root / "results" / "results.json").read_text())


def staff(results: dict) -> str:
    return next(t["output"] for t in results["tests"] if t["name"] == "grading")


def key_of(results: dict) -> str:
    line = next(x for x in staff(results).splitlines() if x.startswith("hidden seed key:"))
    return line.split()[3]


def test_the_bundle_holds_the_course_secret_root_only(bundle, course):
    with zipfile.ZipFile(bundle) as z:
        info = z.getinfo(gradescope.SECRET_MEMBER)
        assert z.read(info) == seeds.secret_path(course).read_bytes()
        assert (info.external_attr >> 16) & 0o777 == 0o600
    assert (bundle.stat().st_mode & 0o077) == 0  # the zip itself holds a secret


def test_two_submitters_face_different_cases_and_a_rerun_the_same(bundle, correct, tmp_path):
    ada = run(bundle, tmp_path / "ada", correct, [{"id": 1001, "email": "ada@example.edu", "name": "Ada"}])
    bob = run(bundle, tmp_path / "bob", correct, [{"id": 1002, "email": "bob@example.edu", "name": "Bob"}])
    assert ada["score"] == bob["score"] == MAX
    assert key_of(ada) != key_of(bob)
    assert "course secret" in staff(ada) and f"--hidden-seed {key_of(ada)}" in staff(ada)
    again = run(bundle, tmp_path / "again", correct, [{"id": 1001, "email": "ada@example.edu", "name": "Ada"}])
    assert key_of(again) == key_of(ada)
    # the key is the one `backprop grade` derives from the same secret, submitter and notebook
    import hashlib
    sha = hashlib.sha256(correct).hexdigest()
    secret = bytes.fromhex((tmp_path / "ada" / "source" / gradescope.SECRET_MEMBER).read_text().strip())
    assert int(key_of(ada)) == seeds.submission_key(secret, ASSIGNMENT, "1001", sha)


def test_a_bundle_without_a_secret_grades_with_a_warning(correct, tmp_path):
    out = tmp_path / "plain.zip"
    done = export(out, "--course", str(tmp_path / "no-course"))
    assert "no course secret" in done.stderr
    assert gradescope.SECRET_MEMBER not in zipfile.ZipFile(out).namelist()
    r = run(out, tmp_path / "root", correct, [{"id": 1001}])
    assert r["score"] == MAX
    assert "no course secret" in staff(r) and "the suite's own" in staff(r)


HUNT = r'''
import os, re
_found, _read = set(), []
_paths = [{secret!r}]
for _pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self"]:
    _paths += [f"/proc/{{_pid}}/environ", f"/proc/{{_pid}}/cmdline", f"/proc/{{_pid}}/root{secret}"]
for _p in _paths:
    try:
        with open(_p, "rb") as _f:
            _read.append(_p)
            _found.update(re.findall(r"[0-9a-f]{{64}}", _f.read(1 << 20).decode("latin-1")))
    except Exception:
        pass
_found.update(re.findall(r"[0-9a-f]{{64}}", repr(dict(os.environ))))
raise RuntimeError(f"HUNTED own={{'/proc/self/cmdline' in _read}} hex={{sorted(_found)}}")
'''


@pytest.mark.parametrize("isolation", [None, "rlimits-only"])
def test_student_code_cannot_read_the_bundles_secret(bundle, course, tmp_path, isolation):
    if isolation is None and available_isolation() != "bwrap":
        pytest.skip("bubblewrap is not usable here; the rlimits-only case covers this machine")
    if isolation == "rlimits-only" and os.geteuid() != 0:
        pytest.skip("the rlimits-only fallback keeps files from student code by uid: root only (as on Gradescope)")
    root = tmp_path / "root"
    path = root / "source" / gradescope.SECRET_MEMBER
    nb = sample.add_cell(sample.as_submitted(sample.source_notebook(course, ASSIGNMENT)), HUNT.format(secret=str(path)))
    r = run(bundle, root, json.dumps(nb).encode(), [{"id": 1003}], isolation)
    assert "HUNTED own=True" in r["output"], r["output"]  # it ran, and read what it may
    assert path.read_text().strip() not in json.dumps(r)
    assert r["score"] == MAX
