"""Experiment cells (timing, plots) do not run while grading; which cells they are comes
from the assignment, never from the submitted notebook's metadata. Real batch, real child."""
from __future__ import annotations

import json

import pytest

from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.runner import Limits

ASSIGNMENT = "forward_mode"
OPTS = Options(limits=Limits(timeout=10.0), budget=60.0)
# if this ran, every test of the student's functions would fail
SABOTAGE = ("derivative = gradient_fwd = gradient_rev = Dual = Var = None\n"
            "raise RuntimeError('the experiment ran')\n")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from grader.authoring.course import generate

    course = tmp_path_factory.mktemp("fm") / "course"
    generate([ASSIGNMENT], course)
    return course


def _set(nb: dict, cell_id: str, source: str | None = None, meta: dict | None = None) -> dict:
    nb = json.loads(json.dumps(nb))
    cell = next(c for c in nb["cells"] if c.get("id") == cell_id)
    if source is not None:
        cell["source"] = source
    if meta is not None:
        cell["metadata"].update(meta)
    return nb


def _grade(course, tmp_path, notebooks: dict) -> dict:
    for student, nb in notebooks.items():
        sample.write(nb, tmp_path / "class" / f"{student}.ipynb")
    grade(Request(path=tmp_path / "class", assignment=ASSIGNMENT, course=course, out=tmp_path / "out",
                  options=OPTS, nbgrader=False))
    return {r["student"]: r for r in json.loads((tmp_path / "out" / "results.json").read_text())}


def test_an_experiment_cell_is_not_run_and_cannot_change_the_grade(course, tmp_path):
    nb = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
    recs = _grade(course, tmp_path, {
        "honest": nb,
        "sabotaged": _set(nb, "experiment-cost", SABOTAGE),
        # the submission's own metadata cannot turn the experiment back on, or a solution off
        "relabelled": _set(_set(_set(nb, "experiment-cost", SABOTAGE, {"backprop": {}}),
                                "derivative-solution", meta={"backprop": {"experiment": True}}),
                           "experiment-cost", meta={"nbgrader": {"solution": True, "grade_id": "experiment-cost"}}),
    })
    for student in ("honest", "sabotaged", "relabelled"):
        rec = recs[student]
        assert rec["total"] == rec["max"] == 20, (student, [t["message"] for t in rec["tests"] if not t["result"]["passed"]])
        ran = {c["id"] for c in rec["cells"]}
        assert "experiment-cost" not in ran and "derivative-solution" in ran
        assert all(c["status"] == "ok" for c in rec["cells"]), rec["cells"]


def test_code_a_student_adds_after_an_experiment_still_runs(course, tmp_path):
    nb = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
    nb = sample.add_cell(_set(nb, "experiment-cost", SABOTAGE), "gradient_rev = None\n", after="experiment-cost")
    rec = _grade(course, tmp_path, {"adds": nb})["adds"]
    points = {t["id"]: t["points"] for t in rec["tests"]}
    assert points["gradient_rev"] == 0 and points["gradient_fwd"] > 0
