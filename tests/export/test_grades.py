"""``backprop export grades``: the LMS's grade-import CSV from real grading records of real LMS
exports, manual scores and extra credit set through nbgrader's own API (late penalties:
tests/grading/test_outputs_agree.py)."""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from grader.export.grades import export_grades
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.reports.records import fmt_points, percent
from grader.runner import Limits

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "tensor_edf"
FAST = Options(limits=Limits(timeout=2.0), budget=30.0)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 3, 1, 9, 30, 0)), data)
    return path


def _grade(z: Path, course: Path, out: Path) -> dict[str, dict]:
    summary = grade(Request(path=z, assignment=ASSIGNMENT, course=course, out=out, options=FAST, reports=False))
    assert not summary["grader_errors"] and "auto scores written" in summary["outputs"]["nbgrader"]
    return {r["student"]: r for r in json.loads((out / "results.json").read_text())}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", "export", "grades", *args], cwd=REPO,
                          capture_output=True, text=True)


def test_canvas_import_with_manual_score_and_extra_credit(course, nbs, tmp_path):
    from nbgrader.api import Gradebook

    z = _zip(tmp_path / "submissions.zip", {
        "andersonalice_12341_900_tensor_edf.ipynb": nbs["correct"],
        "brownbob_LATE_12342_901_tensor_edf.ipynb": nbs["exp_bug"],
        "cruzcarol_12343_902_tensor_edf.ipynb": nbs["sigmoid_bug"]})
    out = tmp_path / "grades"
    recs = _grade(z, course, out)
    alice, bob, carol = recs["12341"], recs["12342"], recs["12343"]
    assert alice["total"] == alice["max"] and bob["total"] < bob["max"] and carol["total"] < carol["max"]

    # a TA gives Bob full marks on one failed test in formgrader (nbgrader's own API)
    failed = next(t for t in bob["tests"] if t["points"] < t["max_points"])
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.find_grade(failed["grade_id"], ASSIGNMENT, ASSIGNMENT, "12342").manual_score = failed["max_points"]
        gb.db.commit()
    bob_points = bob["total"] - failed["points"] + failed["max_points"]
    # formgrader's extra credit for Carol: on top of her score, as nbgrader adds it
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.find_grade("test_add", ASSIGNMENT, ASSIGNMENT, "12343").extra_credit = 1.5
        gb.db.commit()
    carol_points = carol["total"] + 1.5

    r = _cli(ASSIGNMENT, "--format", "canvas", "--course", str(course), "--grades", str(out),
             "--column", "Tensor EDF (4321)")
    assert r.returncode == 0, r.stderr
    assert "3 student(s)" in r.stdout and "manual scores for 2" in r.stdout and r.stderr == ""
    assert (out / "export" / "grades_canvas.csv").read_text().splitlines() == [
        "Student,ID,SIS User ID,SIS Login ID,Section,Tensor EDF (4321)",
        f"Points Possible,,,,,{fmt_points(alice['max'])}",
        f"andersonalice,12341,,,,{fmt_points(alice['max'])}",
        f"brownbob,12342,,,,{fmt_points(bob_points)}",
        f"cruzcarol,12343,,,,{fmt_points(carol_points)}"]

    r = _cli(ASSIGNMENT, "--format", "csv", "--course", str(course), "--grades", str(out), "--out", "-")
    assert r.returncode == 0, r.stderr
    pct = lambda p: f"{percent(p, alice['max']):.1f}"  # noqa: E731
    assert r.stdout.splitlines() == [
        "id,name,points,max,percent,late,late_penalty,manual,submitted_at,flags",
        f"12341,andersonalice,{fmt_points(alice['max'])},{fmt_points(alice['max'])},100.0,no,0,,,",
        f"12342,brownbob,{fmt_points(bob_points)},{fmt_points(alice['max'])},{pct(bob_points)},yes,0,"
        f"{failed['id']},,",
        f"12343,cruzcarol,{fmt_points(carol_points)},{fmt_points(alice['max'])},{pct(carol_points)},no,0,add,,"]
    # gradebook.csv, rebuilt from the same records, says the same
    gb_csv = (out / "gradebook.csv").read_text()
    assert "\n12342,brownbob," in gb_csv and f",{fmt_points(bob_points)},{fmt_points(alice['max'])}," in gb_csv

    # --no-manual: the automatic score again
    r = _cli(ASSIGNMENT, "--format", "canvas", "--course", str(course), "--grades", str(out), "--out", "-",
             "--no-manual")
    assert f"brownbob,12342,,,,{fmt_points(bob['total'])}" in r.stdout.splitlines()
    assert f"cruzcarol,12343,,,,{fmt_points(carol['total'])}" in r.stdout.splitlines()


def test_moodle_grading_worksheet(course, nbs, tmp_path):
    z = _zip(tmp_path / "CS101-Tensor EDF-42.zip", {
        "Alice Anderson_22341_assignsubmission_file_/tensor_edf.ipynb": nbs["correct"],
        "Bob Brown_22342_assignsubmission_file_/tensor_edf_v2.ipynb": nbs["sigmoid_bug"],
        "=1+2_22346_assignsubmission_file_/tensor_edf.ipynb": nbs["exp_bug"]})  # a formula as a name
    out = tmp_path / "grades"
    recs = _grade(z, course, out)
    now = datetime.datetime(2026, 12, 1, 13, 5)
    ex = export_grades(ASSIGNMENT, "moodle", out, course, now=now)
    assert ex.warnings == []
    sub = "Friday, 1 March 2024, 9:30 AM"
    m = fmt_points(recs["22341"]["max"])
    assert recs["22341"]["total"] == recs["22341"]["max"]
    assert ex.text.splitlines() == [
        "Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,"
        "Last modified (submission),Last modified (grade),Feedback comments",
        f'Participant 22341,Alice Anderson,,Submitted for grading,{m},{m},Yes,"{sub}","Tuesday, 1 December 2026, 1:05 PM",',
        f"Participant 22342,Bob Brown,,Submitted for grading,{fmt_points(recs['22342']['total'])},{m},Yes,"
        f'"{sub}","Tuesday, 1 December 2026, 1:05 PM",',
        f"Participant 22346,'=1+2,,Submitted for grading,{fmt_points(recs['22346']['total'])},{m},Yes,"
        f'"{sub}","Tuesday, 1 December 2026, 1:05 PM",']
    assert recs["22342"]["total"] < recs["22342"]["max"] and any(f.startswith("misnamed") for f in recs["22342"]["flags"])

    # Moodle's participant ids are not Canvas user ids: said, not silently exported
    canvas = export_grades(ASSIGNMENT, "canvas", out, course)
    assert canvas.warnings and "moodle" in canvas.warnings[0]

    r = _cli(ASSIGNMENT, "--format", "moodle", "--course", str(course), "--grades", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "no grading records" in r.stderr
