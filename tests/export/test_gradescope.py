"""The Gradescope bundle, run for real under a temporary root: `backprop export gradescope`
writes the zip, we unzip it as Gradescope does into <root>/source, put a notebook into
<root>/submission and run `run_autograder` (bash, a real grading child). results.json is
checked against Gradescope's schema and for the score each notebook's code earns."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.export import gradescope
from grader.grading import sample
from grader.runner import available_isolation

ASSIGNMENT = "tensor_edf"
MAX = 26.0

VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def check_schema(r: dict) -> None:
    """Gradescope's results.json: what its autograder specification requires and allows."""
    assert isinstance(r["score"], (int, float)) and r["score"] >= 0
    assert isinstance(r.get("execution_time", 0), int)
    assert isinstance(r.get("output", ""), str)
    assert r.get("visibility", "visible") in VISIBILITY
    assert r.get("stdout_visibility", "hidden") in VISIBILITY
    assert isinstance(r["tests"], list)
    for t in r["tests"]:
        assert set(t) <= {"score", "max_score", "status", "name", "name_format", "number", "output",
                          "output_format", "tags", "visibility", "extra_data"}, t
        assert isinstance(t["name"], str) and t["name"]
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"] or t["max_score"] == 0 == t["score"]
        assert t.get("status", "passed") in {"passed", "failed"}
        assert t.get("visibility", "visible") in VISIBILITY
    graded = sum(t["score"] for t in r["tests"])
    assert abs(graded - r["score"]) < 1e-6, (graded, r["score"])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gs") / "autograder.zip"
    done = subprocess.run([sys.executable, "-m", "grader.cli", "export", "gradescope", ASSIGNMENT, "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    return out


@pytest.fixture(scope="module")
def notebooks(course) -> dict:
    """The generated course of conftest.py: its source notebook as handed in, and the release."""
    source = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
    release = sample.load_notebook(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    return {"source": source, "release": release}


def run_autograder(bundle: Path, root: Path, files: dict[str, bytes], isolation: str | None = None) -> dict:
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):
        os.chmod(root / "source" / name, 0o755)
    sub = root / "submission"
    sub.mkdir(parents=True)
    for name, data in files.items():
        (sub / name).parent.mkdir(parents=True, exist_ok=True)
        (sub / name).write_bytes(data)
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"email": "ada@example.edu", "sid": "4711"}]}))
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), BACKPROP_PYTHON=sys.executable)
    env.pop("PYTHONPATH", None)
    if isolation:
        env["BACKPROP_ISOLATION"] = isolation
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    check_schema(results)
    return results


def nb_bytes(nb: dict) -> bytes:
    return json.dumps(nb).encode()


def test_bundle_is_reproducible_and_holds_the_grader(bundle, tmp_path):
    again = tmp_path / "again.zip"
    gradescope.export(ASSIGNMENT, again)
    assert again.read_bytes() == bundle.read_bytes()
    names = zipfile.ZipFile(bundle).namelist()
    assert {"setup.sh", "run_autograder", "ASSIGNMENT"} <= set(names)
    assert f"backprop-course/assignments/{ASSIGNMENT}/suite.toml" in names
    assert "backprop-course/grader/grading/batch.py" in names
    assert not any(n.startswith("backprop-course/assignments/") and f"/{ASSIGNMENT}/" not in n for n in names)
    assert subprocess.run(["bash", "-n", "-c", gradescope.SETUP_SH]).returncode == 0


def test_unknown_assignment_is_a_clear_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "grader.cli", "export", "gradescope", "nope", "--out",
                           str(tmp_path / "x.zip")], capture_output=True, text=True)
    assert done.returncode == 2 and "no assignment 'nope'" in done.stderr


@pytest.mark.parametrize("isolation", [None, "rlimits-only"])
def test_correct_notebook_full_marks(bundle, notebooks, tmp_path, isolation):
    if isolation == "rlimits-only" and os.geteuid() != 0:
        pytest.skip("the rlimits-only fallback refuses to grade as an ordinary user (tests/runner checks it); "
                    "Gradescope runs the autograder as root")
    r = run_autograder(bundle, tmp_path, {f"{ASSIGNMENT}.ipynb": nb_bytes(notebooks["source"])}, isolation)
    grading = next(t for t in r["tests"] if t["name"] == "grading")
    assert f"isolation: {isolation or available_isolation()}" in grading["output"]
    assert r["score"] == MAX
    visible = [t for t in r["tests"] if t["visibility"] == "visible"]
    assert len(visible) == 14 and all(t["status"] == "passed" for t in visible)
    assert r["extra_data"]["student"] == "4711"


def test_release_notebook_zero(bundle, notebooks, tmp_path):
    r = run_autograder(bundle, tmp_path, {f"{ASSIGNMENT}.ipynb": nb_bytes(notebooks["release"])})
    assert r["score"] == 0
    assert all(t["score"] == 0 for t in r["tests"])
    # 0-point diagnostic tests included: nothing of a stub notebook passes
    assert all(t["status"] == "failed" for t in r["tests"] if t["visibility"] == "visible")
    assert any("NotImplementedError" in t["output"] or "not implemented" in t["output"].lower()
               for t in r["tests"] if t["visibility"] == "visible")


def test_renamed_notebook_graded_with_a_note(bundle, notebooks, tmp_path):
    r = run_autograder(bundle, tmp_path, {"my_work (1).ipynb": nb_bytes(notebooks["source"])})
    assert r["score"] == MAX
    assert f"please name your notebook {ASSIGNMENT}.ipynb" in r["output"]


@pytest.mark.parametrize("files, words", [
    ({"tensor_edf.ipynb": b"{not json"}, "could not be graded"),
    ({"tensor_edf.ipynb": b""}, "could not be graded"),
    ({"answers.py": b"print(1)"}, "no notebook found"),
])
def test_broken_or_missing_notebook_zero_with_a_message(bundle, tmp_path, files, words):
    r = run_autograder(bundle, tmp_path, files)
    assert r["score"] == 0
    assert words in r["output"]


def test_patching_comparisons_earns_nothing(bundle, notebooks, tmp_path):
    nb = sample.add_cell(notebooks["release"], (
        "import numpy as np, builtins\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "builtins.AssertionError = type('AssertionError', (Exception,), {})\n"))
    r = run_autograder(bundle, tmp_path, {f"{ASSIGNMENT}.ipynb": nb_bytes(nb)})
    assert r["score"] == 0


# A correct Sigmoid: what a successful read of the hidden suite or the reference would buy.
ORACLE = '''
import numpy as np
read = []
for p in {paths!r}:
    try:
        with open(p) as f:
            read.append(f.read())
    except OSError:
        pass
if read:
    class Sigmoid(CompNode):
        def __init__(self, x):
            super().__init__()
            self.x = x

        def forward(self):
            self.value = 0.5 * (1 + np.tanh(0.5 * self.x.value))

        def backward(self):
            self.x.grad += self.grad * self.value * (1 - self.value)
    raise RuntimeError("LEAKED " + read[0][:200])
raise RuntimeError("BLOCKED")
'''


@pytest.mark.parametrize("isolation", [None, "rlimits-only"])
def test_student_code_cannot_read_the_hidden_suite_or_the_reference(bundle, notebooks, tmp_path, isolation):
    if isolation is None and available_isolation() != "bwrap":
        pytest.skip("bubblewrap is not usable here; the rlimits-only case covers this machine")
    if isolation == "rlimits-only" and os.geteuid() != 0:
        pytest.skip("the rlimits-only fallback keeps files from student code by uid: root only (as on Gradescope)")
    code = tmp_path / "source" / "backprop-course"
    paths = [str(code / "assignments" / ASSIGNMENT / "suite.toml"), str(code / "reference" / "operations.py")]
    nb = sample.add_cell(notebooks["release"], ORACLE.format(paths=paths))
    r = run_autograder(bundle, tmp_path, {f"{ASSIGNMENT}.ipynb": nb_bytes(nb)}, isolation)
    assert "LEAKED" not in json.dumps(r)
    assert "BLOCKED" in r["output"]
    assert r["score"] == 0


def test_the_read_oracle_sees_a_readable_file(bundle, notebooks, tmp_path):
    """The oracle above is not blind: a file the child may read does leak through it."""
    nb = sample.add_cell(notebooks["release"], ORACLE.format(paths=["/usr/lib/os-release"]))
    r = run_autograder(bundle, tmp_path, {f"{ASSIGNMENT}.ipynb": nb_bytes(nb)})
    assert "LEAKED" in r["output"]
