"""Submission times and late policies (``grader.grading.late``) against nbgrader's own
``AssignLatePenalties`` step on the same real gradebook.db: a custom plugin class from the
course folder, an extension, the clamp to the notebook's score, ``none``, no due date, and
timestamp.txt in nbgrader's formats."""
from __future__ import annotations

import datetime
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from grader.grading import late

ASSIGNMENT = "tensor_edf"
DUE = datetime.datetime(2026, 3, 1, 12, 0)

PLUGIN = '''\
import math

from nbgrader.plugins import LateSubmissionPlugin


class PerHour(LateSubmissionPlugin):
    """One point per started hour late."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return float(math.ceil(total_seconds_late / 3600))
'''


def db_url(course: Path) -> str:
    return f"sqlite:///{(course / 'gradebook.db').resolve()}"


@pytest.fixture
def own_course(course, tmp_path):
    def make(policy: str, duedate: datetime.datetime | None = DUE) -> Path:
        from nbgrader.api import Gradebook

        dest = tmp_path / "course"
        shutil.copytree(course, dest, ignore=shutil.ignore_patterns("submitted", "autograded", "feedback", "grades"))
        (dest / "late_plugin.py").write_text(PLUGIN, encoding="utf-8")
        with open(dest / "nbgrader_config.py", "a", encoding="utf-8") as f:
            f.write(f"c.CourseDirectory.db_url = {db_url(dest)!r}\n{policy}\n")
        with Gradebook(db_url(dest)) as gb:
            gb.update_or_create_assignment(ASSIGNMENT, duedate=duedate)
        return dest
    return make


def records_for(course: Path, when: dict[str, str | None], fraction: dict[str, float]) -> list[dict]:
    """Records as ``backprop grade`` leaves them (a test entry per grade cell, with points),
    their automatic scores written to gradebook.db as the gradebook sync writes them."""
    from nbgrader.api import Gradebook

    recs = []
    with Gradebook(db_url(course)) as gb:
        cells = gb.find_notebook(ASSIGNMENT, ASSIGNMENT).grade_cells
        for student, at in when.items():
            tests = [{"id": c.name[len("test_"):], "grade_id": c.name, "max_points": c.max_score,
                      "points": round(c.max_score * fraction[student], 4)} for c in cells]
            recs.append({"student": student, "submitted_at": at, "tests": tests,
                         "total": sum(t["points"] for t in tests), "source": "lms.zip!x"})
            gb.update_or_create_student(student)
            gb.update_or_create_submission(ASSIGNMENT, student)
            for grade in gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).grades:
                grade.auto_score = next(t["points"] for t in tests if t["grade_id"] == grade.name)
        gb.db.commit()
    return recs


def nbgraders_penalty(course: Path, student: str, monkeypatch) -> float | None:
    """What ``nbgrader autograde``'s AssignLatePenalties step stores for this submission."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import AssignLatePenalties
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.syspath_prepend(str(course))
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    step = AssignLatePenalties(config=config)
    resources = {"nbgrader": {"notebook": ASSIGNMENT, "assignment": ASSIGNMENT, "student": student,
                              "db_url": db_url(course)}}
    step.preprocess(nbformat.v4.new_notebook(), resources)
    with Gradebook(db_url(course)) as gb:
        return gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).late_submission_penalty


def test_custom_plugin_from_the_course_folder_agrees_with_nbgraders_own_step(own_course, monkeypatch):
    from nbgrader.api import Gradebook

    course = own_course("c.AssignLatePenalties.plugin_class = 'late_plugin.PerHour'")
    when = {"half_hour": "2026-03-01T12:30:00+00:00",     # 1 started hour
            "five_hours": "2026-03-01T17:00:00+00:00",    # 5 points, but only 2.6 earned: clamped
            "extended": "2026-03-01T15:00:00+00:00",      # inside a one-day extension
            "on_time": "2026-03-01T11:00:00+00:00",
            "lms_naive": "2026-03-01T12:00:01",            # no zone: UTC, as nbgrader reads it
            "no_time": None}
    fraction = {"half_hour": 1.0, "five_hours": 0.1, "extended": 1.0, "on_time": 1.0, "lms_naive": 0.5,
                "no_time": 1.0}
    recs = records_for(course, when, fraction)
    with Gradebook(db_url(course)) as gb:
        gb.grant_extension(ASSIGNMENT, "extended", days=1)
    sys_path = list(sys.path)
    note = late.apply(db_url(course), course, ASSIGNMENT, recs)
    assert sys.path == sys_path  # the course folder was importable only while the policy loaded
    assert "late_plugin.PerHour" in note and "3 late submission(s), 3 penalised" in note
    by = {r["student"]: r for r in recs}
    assert by["half_hour"]["late_penalty"] == 1.0 and by["half_hour"]["seconds_late"] == 1800.0
    assert by["five_hours"]["late_penalty"] == pytest.approx(by["five_hours"]["total"])
    assert by["five_hours"]["total"] < 5
    assert by["lms_naive"]["late_penalty"] == 1.0 and by["lms_naive"]["seconds_late"] == 1.0
    for s in ("extended", "on_time", "no_time"):
        assert by[s]["late_penalty"] == 0 and by[s]["seconds_late"] == 0
    assert by["extended"]["duedate"] == "2026-03-02T12:00:00+00:00"
    with Gradebook(db_url(course)) as gb:
        ours = {s: gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, s).late_submission_penalty for s in when}
        assert gb.find_submission(ASSIGNMENT, "lms_naive").timestamp == datetime.datetime(2026, 3, 1, 12, 0, 1)
        assert gb.find_submission(ASSIGNMENT, "no_time").timestamp is None
    for student in when:
        if when[student] is None:
            continue  # autograde without a timestamp.txt
        theirs = nbgraders_penalty(course, student, monkeypatch)
        assert (theirs is None) == (ours[student] is None), student
        assert float(theirs or 0.0) == pytest.approx(float(ours[student] or 0.0)), student
        assert float(ours[student] or 0.0) == pytest.approx(by[student]["late_penalty"])


def test_policy_none_records_lateness_without_a_penalty(own_course):
    course = own_course("c.LateSubmissionPlugin.penalty_method = 'none'")
    recs = records_for(course, {"late": "2026-03-03T12:00:00+00:00"}, {"late": 1.0})
    note = late.apply(db_url(course), course, ASSIGNMENT, recs)
    assert "nbgrader none" in note and "1 late submission(s), 0 penalised" in note
    assert recs[0]["seconds_late"] == 2 * 86400.0 and recs[0]["late_penalty"] == 0
    assert "2 d after the due date" in late.describe(recs[0])


def test_no_due_date_nobody_is_late(own_course):
    course = own_course("c.LateSubmissionPlugin.penalty_method = 'zero'", duedate=None)
    recs = records_for(course, {"any": "2030-01-01T00:00:00+00:00"}, {"any": 1.0})
    note = late.apply(db_url(course), course, ASSIGNMENT, recs)
    assert "no due date" in note
    assert recs[0]["seconds_late"] == 0 and recs[0]["late_penalty"] == 0 and late.describe(recs[0]) is None


@pytest.mark.parametrize("text, iso", [
    ("2026-03-01 14:30:00.123456 UTC", "2026-03-01T14:30:00+00:00"),
    ("2026-03-01 14:30:00 Europe/Berlin", "2026-03-01T13:30:00+00:00"),
    ("2026-03-01 14:30:00 America/New_York", "2026-03-01T19:30:00+00:00"),
    ("2026-03-01T14:30:00-05:00", "2026-03-01T19:30:00+00:00"),
    ("2026-03-01T14:30:00", "2026-03-01T14:30:00+00:00"),
    ("", None),
    ("not a time", None),
])
def test_timestamp_txt_in_nbgraders_formats(tmp_path, text, iso):
    from grader.grading.discover import discover

    folder = tmp_path / "submitted" / "ada" / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / f"{ASSIGNMENT}.ipynb").write_text("{}", encoding="utf-8")
    (folder / "timestamp.txt").write_text(text + "\n", encoding="utf-8")
    assert late.read_timestamp(folder / "timestamp.txt") == iso
    subs = discover(tmp_path / "submitted", ASSIGNMENT)
    late.stamp(subs, tmp_path / "submitted")
    assert [s.submitted_at for s in subs] == [iso]
