"""``backprop grade`` on a small class of conv_edf notebooks: real notebooks in the real
sandbox, points and diagnoses from the hidden suite, accuracy measured in the parent."""
from __future__ import annotations

import json

import pytest

from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.runner import Limits

from test_conv_diagnoses import FLIPPED, POOL_EVERY, suite_tests  # noqa: E402 (tests/grading is on sys.path)

ASSIGNMENT = "conv_edf"


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    from grader.authoring.course import generate

    root = tmp_path_factory.mktemp("conv")
    course = root / "course"
    generate([ASSIGNMENT], course)
    nb = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
    release = sample.load_notebook(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    for student, notebook in {"correct": nb,
                              "flipped": sample.append_code(nb, "conv2d-solution", FLIPPED),
                              "pool_every": sample.append_code(nb, "maxpool2d-solution", POOL_EVERY),
                              "stub": release}.items():
        sample.write(notebook, root / "class" / f"{student}.ipynb")
    grade(Request(path=root / "class", assignment=ASSIGNMENT, course=course, out=root / "out",
                  options=Options(limits=Limits(timeout=180.0, cpu_seconds=300), budget=400.0), nbgrader=False))
    return {r["student"]: r for r in json.loads((root / "out" / "results.json").read_text())}


def _tests(rec: dict) -> dict:
    return {t["id"]: t for t in rec["tests"]}


def test_correct_notebook_gets_full_marks(graded):
    rec = graded["correct"]
    assert rec["status"] == "graded"
    assert rec["total"] == rec["max"] == sum(t["points"] for t in suite_tests().values()) == 22
    load = next(c for c in rec["cells"] if c["id"] == "load-data")
    assert load["status"] == "ok"


def test_flipped_kernel_loses_conv_points_with_its_diagnosis(graded):
    tests = _tests(graded["flipped"])
    conv = tests["conv2d"]
    assert conv["result"]["diagnosis"] == "flipped_kernel"
    assert 0 < conv["points"] < conv["max_points"]  # only the 1x1-kernel cases pass
    # the loop diagnostic sees it and charges nothing (Backward is given)
    assert not tests["backward_cnn"]["result"]["passed"]
    assert tests["backward_cnn"]["points"] == tests["backward_cnn"]["max_points"] == 0
    for tid in ("maxpool2d", "flatten"):
        assert tests[tid]["points"] == tests[tid]["max_points"]
    # the grader retrains the network with the student's components: whatever that gives,
    # predict follows the final network, so the bug is conv2d's alone and charged there once
    acc = tests["accuracy"]
    assert acc["points"] == acc["max_points"] > 0
    if "failed" in acc["result"]["message"]:
        assert "charged on their own tests only" in acc["result"]["message"]


def test_pooling_gradient_to_every_element(graded):
    tests = _tests(graded["pool_every"])
    pool = tests["maxpool2d"]
    assert pool["points"] == 0 and pool["result"]["diagnosis"] == "pool_grad_every_element"
    assert tests["backward_cnn"]["result"]["details"]["component"] == "MaxPool2D"
    assert tests["backward_cnn"]["points"] == tests["backward_cnn"]["max_points"] == 0
    for tid in ("conv2d", "flatten", "accuracy"):  # charged once, on maxpool2d
        assert tests[tid]["points"] == tests[tid]["max_points"]


def test_release_stubs_get_nothing(graded):
    rec = graded["stub"]
    assert rec["total"] == 0
    assert {t["result"]["diagnosis"] for t in rec["tests"] if t["id"] != "accuracy"} == {"not_implemented"}
