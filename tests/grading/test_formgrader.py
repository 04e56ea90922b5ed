"""formgrader and ``nbgrader generate_feedback`` on our grades: ``backprop grade`` on a real
nbgrader course (submitted/ tree with timestamp.txt, a due date, an extension, the ``zero``
late policy) writes autograded/ notebooks nbformat accepts, gradebook.db rows nbgrader's own
API reads (times, scores, comments, penalties), and nbgrader's own generate_feedback turns
them into feedback with our scores; a TA's manual score survives a regrade."""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.runner import Limits

ASSIGNMENT = "tensor_edf"
FAST = Options(limits=Limits(timeout=2.0), budget=30.0)
DUE = datetime.datetime(2026, 3, 1, 12, 0)  # naive UTC, as nbgrader stores it
# student -> (notebook kind, timestamp.txt or None)
CLASS = {
    "ontime": ("correct", "2026-03-01 11:59:00.000000 UTC"),
    "late": ("sigmoid_bug", "2026-03-01 14:30:00 UTC"),
    "extended": ("correct", "2026-03-02 10:00:00 UTC"),        # late, but inside a 2-day extension
    "berlin": ("correct", "2026-03-01 12:30:00 Europe/Berlin"),  # 11:30 UTC: on time
    "blank": ("release", None),                                  # the released notebook, untouched
}


def db_url(course: Path) -> str:
    return f"sqlite:///{(course / 'gradebook.db').resolve()}"


def own_course(src: Path, dest: Path, policy: str) -> Path:
    """A copy of the generated course reading its own gradebook.db, with a late policy."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("submitted", "autograded", "feedback", "grades"))
    with open(dest / "nbgrader_config.py", "a", encoding="utf-8") as f:
        f.write(f"c.CourseDirectory.db_url = {db_url(dest)!r}\n{policy}\n")
    return dest


@pytest.fixture(scope="module")
def graded(course, submitted_nb, tmp_path_factory):
    from nbgrader.api import Gradebook

    root = tmp_path_factory.mktemp("formgrader")
    c = own_course(course, root / "course", "c.LateSubmissionPlugin.penalty_method = 'zero'")
    with Gradebook(db_url(c)) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=DUE)
        gb.update_or_create_student("extended")
        gb.update_or_create_submission(ASSIGNMENT, "extended")
        gb.grant_extension(ASSIGNMENT, "extended", days=2)
    nbs = {"correct": submitted_nb, "release": sample.load_notebook(c / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
           "sigmoid_bug": sample.with_variant(submitted_nb, sample.CORPUS / "buggy" / "sigmoid_upstream_ignored.py")}
    for student, (kind, stamp) in CLASS.items():
        folder = c / "submitted" / student / ASSIGNMENT
        sample.write(nbs[kind], folder / f"{ASSIGNMENT}.ipynb")
        if stamp:
            (folder / "timestamp.txt").write_text(stamp + "\n", encoding="utf-8")
    summary = grade(Request(path=c / "submitted", assignment=ASSIGNMENT, course=c, out=root / "out", options=FAST))
    records = {r["student"]: r for r in json.loads((root / "out" / "results.json").read_text())}
    return c, root / "out", summary, records


def autograded(course: Path, student: str) -> Path:
    return course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def test_autograded_notebooks_validate_and_show_our_verdicts(graded, course):
    c, out, summary, records = graded
    assert "5 notebook(s)" in summary["outputs"]["autograded"]
    release = sample.load_notebook(c / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    course_meta = {m["grade_id"]: m for cell in release["cells"] if (m := cell["metadata"].get("nbgrader"))}
    hidden = [h for cell in sample.source_notebook(course, ASSIGNMENT)["cells"]
              for h in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", "".join(cell["source"]), re.S)]
    for student in CLASS:
        nb = nbformat.read(autograded(c, student), as_version=4)
        nbformat.validate(nb)
        text = autograded(c, student).read_text()
        assert "BEGIN HIDDEN TESTS" not in text and not any(h.strip() in text for h in hidden if h.strip())
        tests = {t["grade_id"]: t for t in records[student]["tests"]}
        seen = {}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if not meta:
                continue
            seen[meta["grade_id"]] = cell
            assert meta == course_meta[meta["grade_id"]]  # grade_id, points, checksum, locked ...
            t = tests.get(meta["grade_id"])
            if t is None:
                assert cell.get("outputs", []) == []
                continue
            kinds = [o["output_type"] for o in cell.outputs]
            if t["result"]["passed"]:
                assert kinds == ["stream"] and "passed" in cell.outputs[0]["text"]
            else:
                assert kinds == ["error"] and t["result"]["message"].splitlines()[0] in cell.outputs[0]["traceback"]
        assert set(seen) == set(course_meta)  # every nbgrader cell, none forged or lost
        assert set(tests) <= set(seen)
    # our verdict: the sigmoid bug fails test_sigmoid in the notebook as in the record
    late = {cell.metadata["nbgrader"]["grade_id"]: cell for cell in nbformat.read(autograded(c, "late"), 4).cells
            if cell.metadata.get("nbgrader")}
    assert late["test_sigmoid"].outputs[0]["output_type"] == "error"
    assert late["test_add"].outputs[0]["output_type"] == "stream"


def test_timestamps_carried_over(graded):
    c, _, _, _ = graded
    for student, (_, stamp) in CLASS.items():
        path = autograded(c, student).parent / "timestamp.txt"
        if stamp:
            assert path.read_text().strip() == stamp
        else:
            assert not path.exists()


def test_gradebook_rows_through_nbgraders_api(graded):
    from nbgrader.api import Gradebook

    c, _, _, records = graded
    with Gradebook(db_url(c)) as gb:
        assert gb.find_submission(ASSIGNMENT, "ontime").timestamp == datetime.datetime(2026, 3, 1, 11, 59)
        assert gb.find_submission(ASSIGNMENT, "berlin").timestamp == datetime.datetime(2026, 3, 1, 11, 30)
        assert gb.find_submission(ASSIGNMENT, "blank").timestamp is None
        for student, rec in records.items():
            nb = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            for t in rec["tests"]:
                assert gb.find_grade(t["grade_id"], ASSIGNMENT, ASSIGNMENT, student).auto_score == pytest.approx(t["points"])
            assert nb.score == pytest.approx(rec["raw"])  # nbgrader's score: before the late penalty
        # SaveAutoGrades' comments: an untouched solution cell is "No response."
        solution_ids = [cell.name for cell in gb.find_notebook(ASSIGNMENT, ASSIGNMENT).solution_cells]
        assert solution_ids
        for gid in solution_ids:
            assert gb.find_comment(gid, ASSIGNMENT, ASSIGNMENT, "blank").auto_comment == "No response."
            assert gb.find_comment(gid, ASSIGNMENT, ASSIGNMENT, "ontime").auto_comment is None
        assert records["blank"]["total"] == 0


def test_zero_policy_due_date_and_extension(graded):
    from nbgrader.api import Gradebook

    c, _, summary, records = graded
    assert records["late"]["raw"] > 0  # graded as usual; the penalty stands beside the score
    assert records["late"]["seconds_late"] == 9000.0
    assert records["late"]["late_penalty"] == pytest.approx(records["late"]["raw"])
    assert records["late"]["total"] == 0  # the zero policy: the final score is raw - penalty
    assert records["late"]["submitted_at"] == "2026-03-01T14:30:00+00:00"
    for student in ("ontime", "extended", "berlin", "blank"):
        assert records[student]["seconds_late"] == 0 and records[student]["late_penalty"] == 0
    assert records["extended"]["duedate"] == "2026-03-03T12:00:00+00:00"
    assert "1 late submission(s), 1 penalised" in summary["outputs"]["late"]
    with Gradebook(db_url(c)) as gb:
        late = gb.find_submission(ASSIGNMENT, "late")
        assert late.total_seconds_late == 9000.0
        assert late.late_submission_penalty == pytest.approx(records["late"]["raw"])
        assert gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "late").late_submission_penalty == \
            pytest.approx(records["late"]["raw"])
        ext = gb.find_submission(ASSIGNMENT, "extended")
        assert ext.extension == datetime.timedelta(days=2) and ext.total_seconds_late == 0
        assert gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "extended").late_submission_penalty is None


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=600)


def test_nbgrader_generate_feedback_shows_our_scores(graded):
    c, _, _, records = graded
    run = _nbgrader(c, "generate_feedback", ASSIGNMENT, "--force")
    assert run.returncode == 0, run.stderr[-3000:]
    scores = {}
    for student in CLASS:
        html = (c / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
        m = re.search(r"Score: ([\d.]+) / ([\d.]+)", html)
        scores[student] = float(m.group(1))
        assert float(m.group(2)) == records[student]["max"]
        assert "BEGIN HIDDEN TESTS" not in html
    assert scores["ontime"] == scores["extended"] == scores["berlin"] == records["ontime"]["max"]
    assert scores["late"] == 0.0  # the zero policy: nbgrader shows score minus penalty
    assert scores["blank"] == 0.0
    assert (c / "feedback" / "late" / ASSIGNMENT / "timestamp.txt").read_text().strip() == CLASS["late"][1]


def test_a_tas_manual_score_survives_a_regrade_of_an_unchanged_notebook(graded):
    from nbgrader.api import Gradebook

    c, out, _, records = graded
    with Gradebook(db_url(c)) as gb:
        g = gb.find_grade("test_sigmoid", ASSIGNMENT, ASSIGNMENT, "late")
        assert g.auto_score < g.max_score
        g.manual_score = g.max_score  # what formgrader's "save" does
        gb.db.commit()
    summary = grade(Request(path=c / "submitted", assignment=ASSIGNMENT, course=c, out=out, options=FAST))
    assert summary["reused"] == len(CLASS)
    with Gradebook(db_url(c)) as gb:
        g = gb.find_grade("test_sigmoid", ASSIGNMENT, ASSIGNMENT, "late")
        assert g.manual_score == g.max_score
        assert g.auto_score == pytest.approx(next(t["points"] for t in records["late"]["tests"]
                                                  if t["grade_id"] == "test_sigmoid"))
        nb = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "late")
        assert nb.score == pytest.approx(records["late"]["raw"] - g.auto_score + g.max_score)
        # the zero policy follows the TA's score, as nbgrader's own step would
        assert nb.late_submission_penalty == pytest.approx(nb.score)
    assert autograded(c, "late").is_file()
