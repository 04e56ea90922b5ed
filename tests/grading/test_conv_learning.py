"""conv_edf's accuracy test graded on the student's own training code, through the real batch
and child: the given CNN retrained by the student's ``train_cnn_epoch`` on a re-drawn image task
(measured in the parent), and ``predict`` following the final network.

Off-task students (every stub left, a classifier of their own in the final cells) earn 0 there;
a lookup ``predict`` earns nothing (the learning half counts only with a predict that follows the
network: it holds nothing else of the student's); components that are wrong or left as stubs are
charged on their own tests, not here again (components left as released earn nothing here);
the reference earns every point.
"""
from __future__ import annotations

import json

import pytest

from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.runner import Limits

ASSIGNMENT = "conv_edf"
# train_cnn_epoch is a given cell (the grader runs the released code, whatever the notebook holds),
# so the learning half measures the student's components trained by it
STUBBED = ("conv2d-solution", "maxpool2d-solution", "flatten-solution")

NEAREST_NEIGHBOUR = """
def predict(X):
    d = ((X[:, None, :] - X_train[None, :, :]) ** 2).sum(-1)
    return y_train[d.argmin(1)]
"""
ANSWER_TABLE = """
ANSWERS = {row.tobytes(): label for row, label in zip(X_train, y_train)}

def predict(X):
    return np.array([ANSWERS.get(row.tobytes(), 0) for row in X])
"""
# name -> (cells replaced, cells left as released, accuracy points of 2, cause in its message)
CASES = {
    "reference": ({}, (), 2, None),
    "nearest_neighbour": ({"final-model-solution": "", "predict-solution": NEAREST_NEIGHBOUR}, STUBBED, 0, None),
    "answer_table": ({"final-model-solution": "", "predict-solution": ANSWER_TABLE}, STUBBED, 0, None),
    "predict_by_lookup": ({"predict-solution": NEAREST_NEIGHBOUR}, (), 0, "did not run the final network on X"),
    # components left as released: the network cannot run, so neither half counts
    "components_left": ({}, STUBBED, 0, "NotImplementedError"),
}


def _notebook(source: dict, release: dict, replace: dict, stubbed) -> dict:
    nb = json.loads(json.dumps(source))
    stubs = {c["id"]: c["source"] for c in release["cells"]}
    for cell in nb["cells"]:
        if cell.get("id") in replace:
            cell["source"] = replace[cell["id"]]
        elif cell.get("id") in stubbed:
            cell["source"] = stubs[cell["id"]]
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    from grader.authoring.course import generate

    root = tmp_path_factory.mktemp("conv_learning")
    course = root / "course"
    generate([ASSIGNMENT], course)
    source = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
    release = sample.load_notebook(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    for name, (replace, stubbed, _, _) in CASES.items():
        sample.write(_notebook(source, release, replace, stubbed), root / "class" / f"{name}.ipynb")
    grade(Request(path=root / "class", assignment=ASSIGNMENT, course=course, out=root / "out",
                  options=Options(limits=Limits(timeout=180.0, cpu_seconds=300), budget=400.0), nbgrader=False))
    return {r["student"]: r for r in json.loads((root / "out" / "results.json").read_text())}


@pytest.mark.parametrize("name", list(CASES))
def test_accuracy_points_and_cause(graded, name):
    _, _, points, cause = CASES[name]
    acc = next(t for t in graded[name]["tests"] if t["id"] == "accuracy")
    assert acc["points"] == pytest.approx(points, abs=0.01), acc["result"]["message"]
    assert acc["result"]["details"]["cases"] == 2  # learning, and predict following the final network
    if cause:
        assert cause in acc["result"]["message"], acc["result"]["message"]


def test_reference_learning_is_measured_in_the_parent(graded):
    acc = next(t for t in graded["reference"]["tests"] if t["id"] == "accuracy")
    assert acc["points"] == acc["max_points"] == 2
    load = next(c for c in graded["reference"]["cells"] if c["id"] == "load-data")
    assert load["status"] == "ok" and "no test labels" in load["injected"]
