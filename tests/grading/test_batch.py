"""``backprop grade`` as a batch: inputs (tree, folder, zip, one file), resume after SIGKILL,
the nbgrader gradebook, the CLI's outputs. Real notebooks, real sandbox, real SQLite."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.discover import discover
from grader.grading.execute import Options
from grader.runner import Limits

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "tensor_edf"
FAST = Options(limits=Limits(timeout=2.0), budget=30.0)


def _class(nb: dict, root: Path, n: int) -> dict[str, float]:
    """An nbgrader submitted/ tree of ``n`` students cycling through corpus variants."""
    variants = [("reference", nb)]
    for kind in ("buggy", "correct"):
        for p in sample.corpus(kind):
            v = sample.with_variant(nb, p)
            if v is not None:
                variants.append((p.stem, v))
    for i in range(n):
        name, v = variants[i % len(variants)]
        sample.write(v, root / f"s{i:02d}-{name}" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    return root


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli", "grade", *args]


def test_kill_9_mid_batch_then_resume_equals_uninterrupted(course, submitted_nb, tmp_path):
    submitted = _class(submitted_nb, tmp_path / "submitted", 16)
    common = ["--assignment", ASSIGNMENT, "--course", str(course), "--no-nbgrader", "--timeout", "2", "--quiet"]
    full = tmp_path / "uninterrupted"
    subprocess.run(_cli(str(submitted), "--out", str(full), *common), check=True, cwd=REPO)

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(str(submitted), "--out", str(out), *common), cwd=REPO)
    deadline = time.monotonic() + 120
    while len(list((out / "submissions").glob("*.json"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "submissions").glob("*.json")))
    assert 4 <= done_before < 16, "the kill should land mid-batch"
    assert not (out / "gradebook.csv").exists()

    r = subprocess.run(_cli(str(submitted), "--out", str(out), *common[:-1], "--json"), check=True, cwd=REPO,
                       capture_output=True, text=True)
    summary = json.loads(r.stdout)
    assert summary["reused"] == done_before and summary["graded_now"] == 16 - done_before
    assert (out / "gradebook.csv").read_text() == (full / "gradebook.csv").read_text()
    # timings differ; "grader" (the fingerprint) only if the checks were edited meanwhile
    strip = lambda recs: [{k: v for k, v in rec.items() if k not in ("seconds", "grader")} for rec in recs]  # noqa: E731
    assert strip(json.loads((out / "results.json").read_text())) == \
        strip(json.loads((full / "results.json").read_text()))

    # a changed submission is regraded, the rest kept; --force regrades all
    victim = next(submitted.glob("s00-*/tensor_edf/tensor_edf.ipynb"))
    victim.write_text(json.dumps(sample.with_variant(submitted_nb, sample.CORPUS / "buggy" / "exp_assign.py")))
    r = subprocess.run(_cli(str(submitted), "--out", str(out), *common[:-1], "--json"), check=True, cwd=REPO,
                       capture_output=True, text=True)
    assert json.loads(r.stdout)["graded_now"] == 1
    r = subprocess.run(_cli(str(submitted), "--out", str(out), *common[:-1], "--json", "--force"), check=True,
                       cwd=REPO, capture_output=True, text=True)
    assert json.loads(r.stdout)["graded_now"] == 16


def test_grades_land_in_the_nbgrader_gradebook(course, submitted_nb, tmp_path):
    from nbgrader.api import Gradebook

    cls = tmp_path / "class"
    sample.write(submitted_nb, cls / "ada.ipynb")
    sample.write(sample.with_variant(submitted_nb, sample.CORPUS / "buggy" / "sigmoid_upstream_ignored.py"),
                 cls / "bob.ipynb")
    summary = grade(Request(path=cls, assignment=ASSIGNMENT, course=course, out=tmp_path / "out", options=FAST))
    assert "auto scores written for 2" in summary["outputs"]["nbgrader"]
    records = {r["student"]: r for r in json.loads((tmp_path / "out" / "results.json").read_text())}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("ada", "bob"):
            gb.find_submission(ASSIGNMENT, student)
            for t in records[student]["tests"]:
                g = gb.find_grade(t["grade_id"], ASSIGNMENT, ASSIGNMENT, student)
                assert g.auto_score == pytest.approx(t["points"])
                assert g.max_score == t["max_points"]
        assert gb.find_submission(ASSIGNMENT, "ada").score == pytest.approx(records["ada"]["total"])
        assert gb.find_submission(ASSIGNMENT, "bob").score < gb.find_submission(ASSIGNMENT, "ada").score


def test_outputs_feedback_and_cli_json(course, submitted_nb, tmp_path):
    cls = tmp_path / "class"
    sample.write(sample.with_variant(submitted_nb, sample.CORPUS / "buggy" / "vdot_W_grad_transposed.py"),
                 cls / "carol.ipynb")
    r = subprocess.run(_cli(str(cls), "--assignment", ASSIGNMENT, "--course", str(course), "--out",
                            str(tmp_path / "out"), "--no-nbgrader", "--json"), cwd=REPO, capture_output=True,
                       text=True, check=True)
    summary = json.loads(r.stdout)
    assert summary["submissions"] == 1 and summary["isolation"] in ("bwrap", "rlimits-only")
    vdot = next(t for t in summary["tests"] if t["id"] == "vdot")
    assert vdot["failed"] == 1 and "matmul_transposed" in vdot["diagnoses"]
    csv = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert csv[0].startswith("student,name,unbroadcast,add,") and csv[0].endswith(",total,max,percent,status,late,flags,review")
    md = (tmp_path / "out" / "feedback" / "carol.md").read_text()
    assert "| vdot |" in md and "matmul_transposed" in md and "hint:" in md
    assert "seeds" not in md and "run_hidden" not in md and "BEGIN HIDDEN" not in md
    rec = json.loads((tmp_path / "out" / "submissions" / "carol.json").read_text())
    assert set(rec) >= {"student", "assignment", "sha256", "source", "status", "isolation", "notes", "cells",
                        "tests", "total", "max", "flags", "seconds"}
    # --quiet prints nothing
    r = subprocess.run(_cli(str(cls), "--assignment", ASSIGNMENT, "--course", str(course), "--out",
                            str(tmp_path / "out"), "--no-nbgrader", "--quiet"), cwd=REPO, capture_output=True,
                       text=True, check=True)
    assert r.stdout == ""


def test_inputs_zip_folder_single_file_duplicates_and_traversal(submitted_nb, tmp_path):
    data = json.dumps(submitted_nb).encode()
    z = tmp_path / "lms.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo("alice_tensor_edf.ipynb", (2024, 1, 1, 10, 0, 0)), data)
        zf.writestr(zipfile.ZipInfo("submissions/alice/tensor_edf.ipynb", (2024, 1, 2, 10, 0, 0)), data + b" ")
        zf.writestr("../../../../tmp/evil.ipynb", data)
        zf.writestr("/abs/bob.ipynb", data)
        zf.writestr("__MACOSX/._alice.ipynb", b"junk")
        zf.writestr("bomb.ipynb", b"0" * (30 << 20))
    subs = {s.student: s for s in discover(z, ASSIGNMENT)}
    assert set(subs) == {"alice", "evil", "bob", "bomb"}
    assert subs["alice"].data.endswith(b" ") and "graded the newest" in subs["alice"].notes[0]
    assert subs["bomb"].data is None and "limit" in subs["bomb"].error
    assert not Path("/tmp/evil.ipynb").exists()

    tree = tmp_path / "submitted"
    sample.write(submitted_nb, tree / "dan" / ASSIGNMENT / "my_copy.ipynb")
    (sub,) = discover(tree, ASSIGNMENT)
    assert sub.student == "dan" and "named 'my_copy.ipynb'" in sub.notes[0]
    single = sample.write(submitted_nb, tmp_path / "erin.ipynb")
    assert [s.student for s in discover(single, ASSIGNMENT)] == ["erin"]


def test_reordered_deleted_and_added_cells(course, submitted_nb, tmp_path):
    nb = json.loads(json.dumps(submitted_nb))
    cells = nb["cells"]
    i = next(k for k, c in enumerate(cells) if c.get("id") == "mse-solution")
    j = next(k for k, c in enumerate(cells) if c.get("id") == "vdot-solution")
    cells[i], cells[j] = cells[j], cells[i]
    nb["cells"] = [c for c in cells if c.get("id") != "relu-solution"]
    nb = sample.add_cell(nb, "def helper():\n    return 1\n", after="add-solution", cell_id="x-added")
    sample.write(nb, tmp_path / "class" / "fay.ipynb")
    grade(Request(path=tmp_path / "class", assignment=ASSIGNMENT, course=course, out=tmp_path / "out",
                  options=FAST, nbgrader=False))
    rec = json.loads((tmp_path / "out" / "submissions" / "fay.json").read_text())
    notes = " ".join(rec["notes"])
    assert "reordered" in notes and "relu-solution was deleted" in notes and "added by the student" in notes
    points = {t["id"]: t["points"] for t in rec["tests"]}
    assert points["relu"] == 0 and points["vdot"] == 3 and points["mse"] == 2


def test_mlp_accuracy_measured_in_the_parent_labels_never_in_the_child(tmp_path):
    from grader.authoring.course import generate

    course = tmp_path / "course"
    generate(["mlp_training"], course)
    nb = sample.as_submitted(sample.source_notebook(course, "mlp_training"))
    sample.write(nb, tmp_path / "class" / "honest.ipynb")
    # copying the held-out labels the notebook loaded: in the child they are placeholders
    cheat = sample.append_code(nb, "predict-solution", "def predict(X):\n    return y_test.copy()\n")
    sample.write(cheat, tmp_path / "class" / "cheat.ipynb")
    grade(Request(path=tmp_path / "class", assignment="mlp_training", course=course, out=tmp_path / "out",
                  options=Options(limits=Limits(timeout=120.0, cpu_seconds=300), budget=300.0)))
    recs = {r["student"]: r for r in json.loads((tmp_path / "out" / "results.json").read_text())}
    assert recs["honest"]["total"] == recs["honest"]["max"] == 10
    load = next(c for c in recs["honest"]["cells"] if c["id"] == "load-data")
    assert load["status"] == "ok" and "no test labels" in load["injected"]
    assert all(c["status"] == "ok" for c in recs["honest"]["cells"])  # matplotlib is a stub
    # learning is judged on the weights the student's own loop trains, not on predict: copying
    # labels into the notebook's predict loses only the accuracy test's half that checks predict
    # against the final network; MLP.predict (the predict test) is the student's own and right
    points = {t["id"]: t["points"] for t in recs["cheat"]["tests"]}
    assert points["accuracy"] == 1.5 and points["predict"] == 2
