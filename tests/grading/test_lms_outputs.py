"""LMS exports end to end (issue 13.1, 13.3): Moodle, Canvas (``_LATE_``) and Blackboard zips
built with their real naming, graded by the real ``backprop grade`` into a real nbgrader course;
then every output a TA reads is checked: one row per real student with the LMS's id and display
name, the misnamed file and the double upload flagged with the reason in summary.json, in
gradebook.csv's ``flags`` column, under "needs a TA's look" in the terminal and the class
report; a notebook of nobody listed for the TA but never a student, in no output or gradebook.db."""
from __future__ import annotations

import csv
import html
import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from test_lms import nbs, put, sha  # noqa: F401 - nbs is a fixture
from test_outputs_agree import A, cli


def grade_zip(course: Path, tmp_path: Path, name: str, members: list[tuple]) -> tuple[Path, Path, str]:
    """Grade ``members`` (``(zip name, bytes[, zip time])``) as one LMS zip in a course of its own."""
    own = tmp_path / "course"
    shutil.copytree(course, own)
    # the session's course may hold other tests' students in its gradebook: this class starts clean
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{own / 'gradebook.db'}") as gb:
        for student in list(gb.students):
            gb.remove_student(student.id)
    z = tmp_path / name
    with zipfile.ZipFile(z, "w") as zf:
        for member in members:
            put(zf, *member)
    out = own / "grades" / A  # where the README's commands look by default
    r = cli("grade", str(z), "--assignment", A, "--course", str(own), "--out", str(out), "--timeout", "60")
    assert r.returncode == 0, r.stderr
    return own, out, r.stdout


def check_outputs(course: Path, out: Path, terminal: str, names: dict[str, str], flagged: dict[str, list[str]],
                  unmatched: list[str] = ()) -> dict[str, dict]:
    """One row per real student everywhere, with id and name; ``flagged``: each student's flag
    kinds (the text before ':'); ``unmatched``: the ends of the nobody's files' paths."""
    from nbgrader.api import Gradebook

    results = {r["student"]: r for r in json.loads((out / "results.json").read_text())}
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {s: r["name"] for s, r in results.items()} == names
    assert [(r["student"], r["name"]) for r in rows] == sorted(names.items())
    assert summary["submissions"] == len(names) == len(list((out / "submissions").glob("*.json")))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert sorted(s.id for s in gb.students) == sorted(names)
        assert sorted(s.student_id for s in gb.find_assignment(A).submissions) == sorted(names)
    index = (out / "report" / "index.html").read_text(encoding="utf-8")
    attention = index[index.index('id="attention"'):index.index("</section>", index.index('id="attention"'))]
    by_csv = {r["student"]: r for r in rows}
    in_summary = {f["student"]: f for f in summary["flagged"] if f["student"] is not None}
    assert set(in_summary) == set(flagged)
    for student, kinds in flagged.items():
        reasons = results[student]["attention"]
        assert sorted({x.split(":")[0] for x in reasons}) == sorted(kinds), student
        assert in_summary[student]["reasons"] == reasons and in_summary[student]["name"] == names[student]
        assert by_csv[student]["flags"] == " | ".join(reasons)
        head = f"  {student} ({names[student]})  [{results[student]['status']}]  {reasons[0][:110]}"
        assert any(line.startswith(head) for line in terminal.splitlines()), head
        assert f'data-student="{html.escape(student)}"' in attention
        assert all(html.escape(x[:200], quote=True) in attention for x in reasons)
    for student in set(names) - set(flagged):
        assert by_csv[student]["flags"] == "" and f'data-student="{student}"' not in attention
    files = [f for f in summary["flagged"] if f["student"] is None]
    assert len(files) == len(unmatched) == len(summary["unmatched"])
    for f, end in zip(files, unmatched):
        assert f["file"].endswith(end) and f["status"] == "not graded"
        assert f"  file {f['file']}  [not graded]  {f['reasons'][0][:110]}" in terminal.splitlines()
        assert html.escape(f["file"], quote=True) in attention
    n = len(flagged) + len(unmatched)
    assert f"needs a TA's look ({n}):" in terminal if n else "needs a TA's look" not in terminal
    return results


def test_moodle_zip_end_to_end(course, nbs, tmp_path):  # noqa: F811
    folder = "{}_assignsubmission_file_/"
    own, out, terminal = grade_zip(course, tmp_path, "CS101-Tensor EDF-42.zip", [
        (folder.format("Alice Anderson_12341") + "tensor_edf.ipynb", nbs["correct"]),
        (folder.format("Bob Brown_12342") + "tensor_edf-Copy1.ipynb", nbs["exp_bug"]),
        (folder.format("Carol Cruz_12343") + "tensor_edf.ipynb", nbs["sigmoid_bug"], (2024, 3, 1, 9, 0, 0)),
        (folder.format("Carol Cruz_12343") + "tensor_edf_final.ipynb", nbs["correct"], (2024, 3, 2, 9, 0, 0)),
        ("tensor_edf.ipynb", nbs["correct"])])  # beside the folders: nobody's
    recs = check_outputs(own, out, terminal,
                         {"12341": "Alice Anderson", "12342": "Bob Brown", "12343": "Carol Cruz"},
                         {"12342": ["misnamed"], "12343": ["several files"]}, ["!tensor_edf.ipynb"])
    assert recs["12341"]["total"] == recs["12341"]["max"] and recs["12342"]["total"] < recs["12342"]["max"]
    # the notebook named like the assignment, not the newer one
    assert recs["12343"]["sha256"] == sha(nbs["sigmoid_bug"])
    assert "tensor_edf-Copy1.ipynb" in recs["12342"]["attention"][0]
    # the student reads the note, not the TA's flag
    md = (out / "feedback" / "12342.md").read_text()
    assert "Bob Brown" in md.splitlines()[0] and "tensor" in md and "reviewed by a TA" in md

    # README's LMS round trip, command by command, as a TA types them beside course/
    commands = readme_round_trip()
    assert [c[:3] for c in commands] == [["backprop", "grade", "~/Downloads/CS101-Tensor_EDF-42.zip"]] + \
        [["backprop", "export", "grades"]] * 3
    for command in commands:
        args = [str(tmp_path / "CS101-Tensor EDF-42.zip") if a.startswith("~/") else a for a in command[1:]]
        extra = ["--timeout", "60"] if args[0] == "grade" else []
        r = subprocess.run([sys.executable, "-m", "grader.cli", *args, *extra], cwd=tmp_path, capture_output=True,
                           text=True)
        assert r.returncode == 0, (command, r.stderr)
        if args[0] == "grade":
            assert "0 graded now, 3 unchanged (kept)" in r.stdout  # the same export: nothing graded twice
    exported = {f: (out / "export" / f"grades_{f}.csv").read_text().splitlines() for f in ("canvas", "moodle", "csv")}
    assert exported["canvas"][0].endswith(",Tensor EDF (4321)")
    assert [row.split(",")[:2] for row in exported["moodle"][1:]] == [
        ["Participant 12341", "Alice Anderson"], ["Participant 12342", "Bob Brown"], ["Participant 12343", "Carol Cruz"]]
    assert [row.split(",")[2] for row in exported["csv"][1:]] == [f"{recs[s]['total']:g}" for s in sorted(recs)]


def readme_round_trip() -> list[list[str]]:
    """The commands of README.md's "The LMS round trip", in order."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = text.index("### The LMS round trip")
    section = text[start:text.index("\n### ", start + 1)]
    commands = re.findall(r"`(backprop grade [^`]+)`|^\s*(backprop [^#\n]+?)\s*(?:#.*)?$", section, re.M)
    return [shlex.split(a or b) for a, b in commands]


def test_canvas_zip_with_late_marks_end_to_end(course, nbs, tmp_path):  # noqa: F811
    own, out, terminal = grade_zip(course, tmp_path, "submissions.zip", [
        ("andersonalice_12341_900_tensor_edf.ipynb", nbs["sigmoid_bug"]),
        ("andersonalice_12341_905_tensor_edf-1.ipynb", nbs["correct"]),          # re-upload: the later one
        ("brownbob_LATE_12342_901_tensor_edf_final.ipynb", nbs["exp_bug"]),       # late and misnamed
        ("cruzcarol_12343_902_tensor_edf.ipynb", nbs["correct"])])
    recs = check_outputs(own, out, terminal, {"12341": "andersonalice", "12342": "brownbob", "12343": "cruzcarol"},
                         {"12341": ["several files"], "12342": ["misnamed"]})
    assert recs["12341"]["sha256"] == sha(nbs["correct"]) and recs["12341"]["total"] == recs["12341"]["max"]
    assert [recs[s]["late"] for s in ("12341", "12342", "12343")] == [False, True, False]
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        late = {r["student"]: r["late"] for r in csv.DictReader(f)}
    assert late == {"12341": "", "12342": "yes", "12343": ""}  # Canvas says late, without a time
    # and the grades go back under the same Canvas ids and names
    ex = cli("export", "grades", A, "--format", "canvas", "--course", str(own), "--grades", str(out), "--out", "-")
    assert ex.returncode == 0 and ex.stderr == ""
    rows = list(csv.reader(ex.stdout.splitlines()))
    assert [(r[0], r[1]) for r in rows[2:]] == [("andersonalice", "12341"), ("brownbob", "12342"),
                                                ("cruzcarol", "12343")]
    assert [float(r[5]) for r in rows[2:]] == [recs[s]["total"] for s in ("12341", "12342", "12343")]


RECEIPT = "Name: {name} ({user})\nAssignment: Tensor EDF\nDate Submitted: {stamp}\n"


def test_blackboard_zip_end_to_end(course, nbs, tmp_path):  # noqa: F811
    def attempt(user: str, name: str, stamp: str, files: list[tuple[str, bytes]]) -> list[tuple]:
        prefix = f"Tensor EDF_{user}_attempt_{stamp}"
        return [(prefix + ".txt", RECEIPT.format(name=name, user=user, stamp=stamp))] + \
            [(f"{prefix}_{fn}", data) for fn, data in files]

    own, out, terminal = grade_zip(course, tmp_path, "gradebook_CS101_Tensor20EDF_2024-03-05-09-00-00.zip",
                                   attempt("a_anderson", "Alice Anderson", "2024-03-01-10-00-00",
                                           [("tensor_edf.ipynb", nbs["exp_bug"])])
                                   + attempt("a_anderson", "Alice Anderson", "2024-03-02-10-00-00",
                                             [("tensor_edf.ipynb", nbs["correct"])])
                                   + attempt("bbrown", "Bob Brown", "2024-03-01-11-00-00",
                                             [("Tensor EDF copy.ipynb", nbs["sigmoid_bug"])])
                                   + attempt("ccruz", "Carol Cruz", "2024-03-01-12-00-00",
                                             [("tensor_edf.ipynb", nbs["correct"]), ("scratch.ipynb", nbs["stub"])]))
    recs = check_outputs(own, out, terminal, {"a_anderson": "Alice Anderson", "bbrown": "Bob Brown",
                                              "ccruz": "Carol Cruz"},
                         {"bbrown": ["misnamed"], "ccruz": ["several files"]})
    # the latest attempt is the submission (a note, not a flag)
    assert recs["a_anderson"]["sha256"] == sha(nbs["correct"]) and recs["a_anderson"]["submitted_at"] == \
        "2024-03-02T10:00:00"
    assert recs["ccruz"]["sha256"] == sha(nbs["correct"]) and recs["ccruz"]["total"] == recs["ccruz"]["max"]
