"""conv_edf's accuracy test graded on the student's own training code, through the real batch
and child: the given CNN retrained by the student's ``train_cnn_epoch`` on a re-drawn image task
(measured in the parent), and ``predict`` following the final network.

Off-task students (every stub left, a classifier of their own in the final cells) earn 0 there;
training outside ``SGD`` earns nothing for learning; a lookup ``predict`` keeps only the
learning half; the reference earns every point.
"""
from __future__ import annotations

import json

import pytest

from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.runner import Limits

ASSIGNMENT = "conv_edf"
STUBBED = ("conv2d-solution", "maxpool2d-solution", "flatten-solution", "train-cnn-epoch-solution")

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
# training in NumPy on the network's last layer: the weights never go through SGD
NUMPY_EPOCH = '''
def train_cnn_epoch(model, X, y, eta, batch_size, rng):
    K, c, W, b = model.params
    model.x.set(X)
    model.labels.set(y)
    Forward()
    h = model.logits.operands[0].operands[0].value if hasattr(model.logits, "operands") else None
    z = model.logits.value
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    b.value = b.value - eta * p.mean(0)
    return float(model.loss.value)
'''
# SGD with the wrong sign: the loss climbs
SGD_SIGN = '''
def train_cnn_epoch(model, X, y, eta, batch_size, rng):
    losses = []
    order = rng.permutation(len(X))
    for rows in np.array_split(order, max(1, len(X) // batch_size)):
        model.x.set(X[rows])
        model.labels.set(y[rows])
        Forward()
        Backward(model.loss)
        SGD(-eta)
        losses.append(float(model.loss.value))
    return float(np.mean(losses))
'''

# name -> (cells replaced, cells left as released, accuracy points of 6, cause in its message)
CASES = {
    "reference": ({}, (), 6, None),
    "nearest_neighbour": ({"final-model-solution": "", "predict-solution": NEAREST_NEIGHBOUR}, STUBBED, 0, None),
    "answer_table": ({"final-model-solution": "", "predict-solution": ANSWER_TABLE}, STUBBED, 0, None),
    "predict_by_lookup": ({"predict-solution": NEAREST_NEIGHBOUR}, (), 3, "did not run the final network on X"),
    "numpy_epoch": ({"train-cnn-epoch-solution": NUMPY_EPOCH}, (), 3, "SGD"),
    "sgd_sign": ({"train-cnn-epoch-solution": SGD_SIGN}, (), 3, "SGD(-eta)"),
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
    assert acc["points"] == acc["max_points"] == 6
    load = next(c for c in graded["reference"]["cells"] if c["id"] == "load-data")
    assert load["status"] == "ok" and "no test labels" in load["injected"]
