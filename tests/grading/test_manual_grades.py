"""Manual grades honoured (issue 13.5): a TA's adjustment in gradebook.db overrides the automatic
score in every output; a resubmission that changes that automatic score keeps the override but
flags it as stale, in every output, until the TA saves the grade again."""
from __future__ import annotations

import json
import shutil

import pytest

from grader.grading import sample

from test_outputs_agree import A, assert_outputs_agree, cli, parse_csv


def adjust(course, student: str, test: str, score: float | None) -> None:
    """What formgrader does when a TA saves a grade (nbgrader's own API)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade(f"test_{test}", A, A, student)
        grade.manual_score = score
        grade.needs_manual_grade = score is None and grade.auto_score is None
        gb.db.commit()


def db_grade(course, student: str, test: str):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        g = gb.find_grade(f"test_{test}", A, A, student)
        return g.auto_score, g.manual_score, g.needs_manual_grade, g.score


def test_manual_grade_survives_regrades_and_goes_stale_on_a_changed_resubmission(course, submitted_nb, tmp_path):
    own = tmp_path / "course"
    shutil.copytree(course, own)
    cls, out = tmp_path / "class", tmp_path / "out"
    sample.write(submitted_nb, cls / "ada.ipynb")
    buggy = sample.with_variant(submitted_nb, sample.CORPUS / "buggy" / "mul_upstream_ignored.py")
    sample.write(buggy, cls / "bob.ipynb")
    grade = ["grade", str(cls), "--assignment", A, "--course", str(own), "--out", str(out), "--timeout", "60"]
    first = cli(*grade)
    auto = {r["student"]: r for r in json.loads((out / "results.json").read_text())}
    mul = next(t for t in auto["bob"]["tests"] if t["id"] == "mul")
    assert mul["points"] < mul["max_points"]  # what a TA might raise by hand
    full = mul["max_points"]
    assert_outputs_agree(out, own, [first.stdout])

    # the TA gives full marks for mul in formgrader; a regrade keeps it and flags nothing
    adjust(own, "bob", "mul", full)
    again = cli(*grade)
    recs = {r["student"]: r for r in assert_outputs_agree(out, own, [again.stdout])}
    bob = recs["bob"]
    t = next(t for t in bob["tests"] if t["id"] == "mul")
    assert (t["points"], t["auto_points"], t["manual_points"], t["state"]) == (full, mul["points"], full, "passed")
    assert bob["total"] == pytest.approx(auto["bob"]["total"] - mul["points"] + full)
    assert bob["attention"] == [] and "stale" not in again.stdout
    assert float(parse_csv(out / "gradebook.csv")["bob"]["mul"]) == full
    assert db_grade(own, "bob", "mul") == (mul["points"], full, False, full)
    assert "adjusted by a TA" in (out / "feedback" / "bob.md").read_text()
    assert "adjusted by a TA" in (out / "feedback" / "bob.html").read_text()

    # bob resubmits a fixed notebook: the automatic score of mul changes under the TA's grade
    sample.write(submitted_nb, cls / "bob.ipynb")
    third = cli(*grade)
    recs = {r["student"]: r for r in assert_outputs_agree(out, own, [third.stdout])}
    bob = recs["bob"]
    t = next(t for t in bob["tests"] if t["id"] == "mul")
    assert (t["points"], t["auto_points"], t["manual_points"]) == (full, full, full)  # kept, never dropped
    why = (f"stale manual grade: mul: auto score changed from {mul['points']:g} to {full:g} since the TA's "
           f"adjustment (the TA's {full:g} is kept; review it in formgrader)")
    assert bob["attention"] == [why]
    assert why in parse_csv(out / "gradebook.csv")["bob"]["flags"]
    summary = json.loads((out / "summary.json").read_text())
    assert {f["student"]: f["reasons"] for f in summary["flagged"]} == {"bob": [why]}
    assert "stale manual grade" in third.stdout
    assert "stale manual grade: mul" in (out / "report" / "index.html").read_text()
    assert db_grade(own, "bob", "mul")[:3] == (full, full, True)  # formgrader lists it as needing grading
    assert "stale" not in (out / "feedback" / "bob.md").read_text()  # the TA's business, not the student's

    # still stale on a plain regrade and in `backprop report` (the record remembers the TA's baseline)
    cli(*grade)
    report = cli("report", "-a", A, "--course", str(own), "--out", str(out))
    recs = {r["student"]: r for r in assert_outputs_agree(out, own, [report.stdout])}
    assert recs["bob"]["attention"] == [why]

    # the TA reviews it and saves the grade again in formgrader: no longer stale
    adjust(own, "bob", "mul", full)
    report = cli("report", "-a", A, "--course", str(own), "--out", str(out))
    recs = {r["student"]: r for r in assert_outputs_agree(out, own, [report.stdout])}
    assert recs["bob"]["attention"] == [] and db_grade(own, "bob", "mul")[2] is False

    # removing the override brings back the automatic score everywhere
    adjust(own, "bob", "mul", None)
    report = cli("report", "-a", A, "--course", str(own), "--out", str(out))
    recs = {r["student"]: r for r in assert_outputs_agree(out, own, [report.stdout])}
    t = next(t for t in recs["bob"]["tests"] if t["id"] == "mul")
    assert "manual_points" not in t and t["points"] == full and not recs["bob"].get("manual")
