"""LMS exports as the LMSs write them (Moodle, Canvas, Blackboard, Gradescope), graded by the
real batch: one record per real student, ids and names from the export's structure, the
right notebook chosen, flags where a TA should look. Real notebooks from a generated course."""
from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from pathlib import Path

import pytest

from grader.files import file_stem
from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.discover import discover
from grader.grading.execute import Options
from grader.runner import Limits

ASSIGNMENT = "tensor_edf"
FAST = Options(limits=Limits(timeout=2.0), budget=30.0)


@pytest.fixture(scope="module")
def nbs(course, submitted_nb) -> dict[str, bytes]:
    """Real notebooks as bytes: full marks, two different bugs, and stubs only (the release)."""
    def dump(nb):
        return (json.dumps(nb, indent=1, sort_keys=True) + "\n").encode()

    buggy = sample.CORPUS / "buggy"
    return {"correct": dump(submitted_nb),
            "sigmoid_bug": dump(sample.with_variant(submitted_nb, buggy / "sigmoid_upstream_ignored.py")),
            "exp_bug": dump(sample.with_variant(submitted_nb, buggy / "exp_assign.py")),
            "stub": dump(sample.load_notebook(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"))}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(zf: zipfile.ZipFile, name: str, data: bytes | str, when=(2024, 3, 1, 12, 0, 0)) -> None:
    zf.writestr(zipfile.ZipInfo(name, when), data)


def grade_export(path: Path, course: Path, out: Path) -> dict[str, dict]:
    summary = grade(Request(path=path, assignment=ASSIGNMENT, course=course, out=out, options=FAST,
                            nbgrader=False, reports=True))
    assert not summary["grader_errors"]
    records = {r["student"]: r for r in json.loads((out / "results.json").read_text())}
    assert summary["submissions"] == len(records)
    # one file per student, named by the injective stem; one gradebook row per student
    assert sorted(p.name for p in (out / "submissions").glob("*.json")) == sorted(f"{file_stem(s)}.json"
                                                                                   for s in records)
    assert sorted(p.name for p in (out / "feedback").glob("*.md")) == sorted(f"{file_stem(s)}.md" for s in records)
    assert len((out / "gradebook.csv").read_text().splitlines()) == 1 + len(records)
    return records


def unmatched(out: Path) -> list[dict]:
    """The export's notebooks of nobody, as summary.json lists them (in "flagged" too)."""
    summary = json.loads((out / "summary.json").read_text())
    files = [f for f in summary["flagged"] if f["student"] is None]
    assert [{"file": f["file"], "reason": f["reasons"][0]} for f in files] == summary["unmatched"]
    return summary["unmatched"]


def flags(rec: dict, prefix: str) -> list[str]:
    return [f for f in rec["flags"] if f.startswith(prefix)]


# -- Moodle ------------------------------------------------------------------------------------

def test_moodle_folder_per_participant(course, nbs, tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as iz:  # a student who zipped her notebook before uploading
        put(iz, "my work/tensor_edf.ipynb", nbs["exp_bug"])
    z = tmp_path / "CS101-Tensor EDF-42.zip"
    with zipfile.ZipFile(z, "w") as zf:
        a = "Alice Anderson_12341_assignsubmission_file_/"
        put(zf, a + "tensor_edf.ipynb", nbs["correct"], (2024, 3, 1, 10, 0, 0))
        put(zf, a + "tensor_edf_final.ipynb", nbs["sigmoid_bug"], (2024, 3, 2, 10, 0, 0))  # newer, misnamed
        # a file whose NAME claims Bob's submission, inside Alice's upload
        put(zf, a + "Bob Brown_12342_assignsubmission_file_tensor_edf.ipynb", nbs["stub"], (2024, 3, 3, 0, 0, 0))
        put(zf, "Bob Brown_12342_assignsubmission_file_/tensor_edf-Copy1.ipynb", nbs["correct"])
        put(zf, "Carol Cruz_12343_assignsubmission_file_/work.zip", inner.getvalue())
        put(zf, "Dan Dole_12344_assignsubmission_onlinetext_/onlinetext.html", "<p>see my notebook</p>")
        put(zf, "Dan Dole_12344_assignsubmission_file_/tensor_edf.ipynb", nbs["sigmoid_bug"])
        put(zf, "Erin Eve_12345_assignsubmission_file_/tensor_edf.ipynb", nbs["exp_bug"])
        # a traversal attempt at Bob's folder, and a symlink to a file outside
        put(zf, "Erin Eve_12345_assignsubmission_file_/../../Bob Brown_12342_assignsubmission_file_/tensor_edf.ipynb",
            nbs["stub"], (2024, 3, 9, 0, 0, 0))
        link = zipfile.ZipInfo("Erin Eve_12345_assignsubmission_file_/linked.ipynb", (2024, 3, 9, 0, 0, 0))
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    recs = grade_export(z, course, tmp_path / "out")

    assert sorted(recs) == ["12341", "12342", "12343", "12344", "12345"]
    assert {s: r["name"] for s, r in recs.items()} == {
        "12341": "Alice Anderson", "12342": "Bob Brown", "12343": "Carol Cruz", "12344": "Dan Dole",
        "12345": "Erin Eve"}
    assert all(r["lms"] == "moodle" for r in recs.values())
    alice, bob, carol, dan, erin = (recs[s] for s in sorted(recs))
    # Alice: the notebook named like the assignment, not the newer misnamed one nor the claim on Bob
    assert alice["sha256"] == sha(nbs["correct"]) and alice["total"] == alice["max"]
    assert flags(alice, "several files") and not flags(alice, "misnamed")
    assert any("(12342)" in f for f in flags(alice, "suspicious"))
    # Bob: his own (misnamed) notebook; neither Alice's file nor Erin's traversal replaced it
    assert bob["sha256"] == sha(nbs["correct"]) and bob["total"] == bob["max"]
    assert flags(bob, "misnamed") and "tensor_edf-Copy1.ipynb" in flags(bob, "misnamed")[0]
    assert len([f for f in flags(bob, "suspicious") if "not used for you" in f]) == 2
    # Carol: the notebook inside the zip she uploaded
    assert carol["sha256"] == sha(nbs["exp_bug"]) and carol["total"] < carol["max"]
    assert "work.zip" in carol["source"] and not carol["flags"]
    # Dan: the online-text part is not a notebook; his notebook is graded, nothing to flag
    assert dan["sha256"] == sha(nbs["sigmoid_bug"]) and not dan["flags"]
    assert 0 < dan["total"] < dan["max"]
    # Erin: her own notebook; the traversal and the symlink refused and flagged
    assert erin["sha256"] == sha(nbs["exp_bug"]) and erin["total"] == carol["total"]
    assert any("path outside its folder" in f for f in flags(erin, "suspicious"))
    assert all(r["late"] is None for r in recs.values())
    assert alice["submitted_at"] == "2024-03-01T10:00:00"


def test_moodle_flat_download_and_resume(course, nbs, tmp_path):
    """"Download submissions in folders" off: flat names; a regrade reuses every record."""
    z = tmp_path / "flat.zip"
    with zipfile.ZipFile(z, "w") as zf:
        put(zf, "Alice Anderson_12341_assignsubmission_file_tensor_edf.ipynb", nbs["correct"])
        put(zf, "Bob Brown_12342_assignsubmission_file_tensor_edf (1).ipynb", nbs["sigmoid_bug"])
        put(zf, "Bob Brown_12342_assignsubmission_file_notes.pdf", b"%PDF-1.4")
    out = tmp_path / "out"
    recs = grade_export(z, course, out)
    assert sorted(recs) == ["12341", "12342"]
    assert recs["12341"]["name"] == "Alice Anderson" and not recs["12341"]["flags"]
    assert recs["12342"]["sha256"] == sha(nbs["sigmoid_bug"]) and flags(recs["12342"], "misnamed")
    again = grade(Request(path=z, assignment=ASSIGNMENT, course=course, out=out, options=FAST, nbgrader=False,
                          reports=False))
    assert again["reused"] == 2 and again["graded_now"] == 0


# -- Canvas ------------------------------------------------------------------------------------

def test_canvas_flat_names_late_and_reuploads(course, nbs, tmp_path):
    z = tmp_path / "cs101-tensor-edf submissions.zip"
    with zipfile.ZipFile(z, "w") as zf:
        put(zf, "andersonalice_12341_900_tensor_edf.ipynb", nbs["sigmoid_bug"])
        put(zf, "andersonalice_12341_905_tensor_edf-1.ipynb", nbs["correct"])     # re-upload: newer attachment
        put(zf, "brownbob_LATE_12342_901_tensor_edf_final.ipynb", nbs["exp_bug"])  # late and misnamed
        put(zf, "brownbob_LATE_12342_902_notes.txt", "notes")
        # Carol's only file is named as Alice's submission
        put(zf, "cruzcarol_12343_903_andersonalice_12341_904_tensor_edf.ipynb", nbs["stub"])
        put(zf, "cruzcarol_12343_text.html", "<p>hi</p>")
        put(zf, "../../../tmp/doledan_12344_906_tensor_edf.ipynb", nbs["stub"])  # traversal
        put(zf, "LATE_anon_x7Kq2_907_tensor_edf.ipynb", nbs["correct"])           # anonymous grading
    recs = grade_export(z, course, tmp_path / "out")

    # the traversal is nobody's file: listed for the TA, never graded, never a student
    assert sorted(recs) == ["12341", "12342", "12343", "anon_x7Kq2"]
    (dan,) = unmatched(tmp_path / "out")
    assert dan["file"].endswith("doledan_12344_906_tensor_edf.ipynb") and "outside the export" in dan["reason"]
    alice, bob, carol = (recs[s] for s in ("12341", "12342", "12343"))
    assert (alice["name"], bob["name"], carol["name"]) == ("andersonalice", "brownbob", "cruzcarol")
    assert alice["sha256"] == sha(nbs["correct"]) and alice["total"] == alice["max"]
    assert alice["late"] is False and flags(alice, "several files") and not flags(alice, "misnamed")
    assert any("(12343)" in f and "not used for you" in f for f in flags(alice, "suspicious"))
    assert bob["late"] is True and bob["sha256"] == sha(nbs["exp_bug"]) and flags(bob, "misnamed")
    assert carol["sha256"] == sha(nbs["stub"]) and carol["total"] < alice["total"]
    assert any("(12341)" in f for f in flags(carol, "suspicious"))
    assert recs["anon_x7Kq2"]["late"] is True
    assert not Path("/tmp/doledan_12344_906_tensor_edf.ipynb").exists()


# -- Blackboard --------------------------------------------------------------------------------

RECEIPT = """Name: {name} ({user})
Assignment: Tensor EDF
Date Submitted: {date}
Current Grade: Needs Grading

Submission Field:
There is no student submission text data for this assignment.

Comments:
There are no student comments for this assignment.

Files:
\tOriginal filename: {file}
\tFilename: {stored}
"""


def test_blackboard_attempts_and_receipts(course, nbs, tmp_path):
    def attempt(zf, user, name, stamp, files):
        prefix = f"Tensor EDF_{user}_attempt_{stamp}"
        put(zf, prefix + ".txt", RECEIPT.format(name=name, user=user, date=f"attempt {stamp}", file=files[0][0],
                                                stored=f"{prefix}_{files[0][0]}"))
        for fn, data in files:
            put(zf, f"{prefix}_{fn}", data)

    z = tmp_path / "gradebook_CS101_Tensor20EDF_2024-03-05-09-00-00.zip"
    with zipfile.ZipFile(z, "w") as zf:
        attempt(zf, "a_anderson", "Alice Anderson", "2024-03-01-10-00-00", [("tensor_edf.ipynb", nbs["sigmoid_bug"])])
        attempt(zf, "a_anderson", "Alice Anderson", "2024-03-02-10-00-00", [("tensor_edf.ipynb", nbs["correct"])])
        attempt(zf, "bbrown", "Bob Brown", "2024-03-01-11-00-00", [("Tensor EDF copy.ipynb", nbs["exp_bug"])])
        # Carol uploads a file named as a later attempt of Alice's
        attempt(zf, "ccruz", "Carol Cruz", "2024-03-01-12-00-00",
                [("tensor_edf.ipynb", nbs["exp_bug"]),
                 ("Tensor EDF_a_anderson_attempt_2024-03-04-10-00-00_tensor_edf.ipynb", nbs["stub"])])
    recs = grade_export(z, course, tmp_path / "out")

    assert sorted(recs) == ["a_anderson", "bbrown", "ccruz"]
    alice, bob, carol = recs["a_anderson"], recs["bbrown"], recs["ccruz"]
    assert (alice["name"], bob["name"], carol["name"]) == ("Alice Anderson", "Bob Brown", "Carol Cruz")
    # the latest attempt, not the claim Carol's file makes on a later one
    assert alice["sha256"] == sha(nbs["correct"]) and alice["submitted_at"] == "2024-03-02T10:00:00"
    assert any("2 attempts" in n for n in alice["notes"]) and alice["total"] == alice["max"]
    assert any("(ccruz)" in f for f in flags(alice, "suspicious"))
    assert bob["sha256"] == sha(nbs["exp_bug"]) and flags(bob, "misnamed")
    assert carol["sha256"] == sha(nbs["exp_bug"]) and flags(carol, "several files")
    assert any("(a_anderson)" in f for f in flags(carol, "suspicious"))


# -- Gradescope --------------------------------------------------------------------------------

METADATA = """submission_5001:
  :submitters:
  - :name: Alice Anderson
    :sid: 'A001'
    :email: alice@example.edu
  :created_at: 2024-03-01 10:00:00.123456000 -08:00
  :score: 0.0
  :status: processed
submission_5002:
  :submitters:
  - :name: Bob Brown
    :sid: ''
    :email: bob@example.edu
  - :name: Carol Cruz
    :sid: 'C003'
    :email: carol@example.edu
  :created_at: 2024-03-02 11:30:00.000000000 -08:00
  :score: 0.0
"""


def test_gradescope_metadata_and_groups(course, nbs, tmp_path):
    z = tmp_path / "assignment_777_export.zip"
    with zipfile.ZipFile(z, "w") as zf:
        put(zf, "assignment_777_export/submission_metadata.yml", METADATA)
        put(zf, "assignment_777_export/submission_5001/tensor_edf.ipynb", nbs["correct"])
        # metadata inside a submission folder is the student's file, not Gradescope's
        put(zf, "assignment_777_export/submission_5001/submission_metadata.yml",
            METADATA.replace("A001", "C003"))
        put(zf, "assignment_777_export/submission_5002/tensor_edf.ipynb", nbs["exp_bug"])
        put(zf, "assignment_777_export/submission_5003/tensor_edf.ipynb", nbs["correct"])  # not in the metadata
    recs = grade_export(z, course, tmp_path / "out")

    assert sorted(recs) == ["A001", "C003", "bob@example.edu"]
    assert recs["A001"]["name"] == "Alice Anderson" and recs["A001"]["email"] == "alice@example.edu"
    assert recs["A001"]["submitted_at"] == "2024-03-01T10:00:00.123456-08:00"
    assert recs["A001"]["sha256"] == sha(nbs["correct"])
    # a group submission counts for each member
    assert recs["C003"]["sha256"] == recs["bob@example.edu"]["sha256"] == sha(nbs["exp_bug"])
    assert recs["C003"]["name"] == "Carol Cruz" and recs["bob@example.edu"]["name"] == "Bob Brown"
    (orphan,) = unmatched(tmp_path / "out")
    assert orphan["file"].endswith("submission_5003/tensor_edf.ipynb") and orphan["reason"].startswith("unmatched")


# -- ids -> file names -------------------------------------------------------------------------

def test_ids_map_to_file_names_injectively(course, nbs, tmp_path):
    cls = tmp_path / "class"
    cls.mkdir()
    for sid, key in (("x+y", "correct"), ("x_y", "exp_bug"), ("x y", "sigmoid_bug"), ("X_Y", "stub")):
        (cls / f"{sid}.ipynb").write_bytes(nbs[key])
    assert sorted(s.student for s in discover(cls, ASSIGNMENT)) == ["X_Y", "x y", "x+y", "x_y"]
    out = tmp_path / "out"
    recs = grade_export(cls, course, out)
    assert len({file_stem(s) for s in recs}) == 4 and len({file_stem(s).lower() for s in recs}) == 4
    assert file_stem("x_y") == "x_y"
    for sid, key in (("x+y", "correct"), ("x_y", "exp_bug"), ("x y", "sigmoid_bug"), ("X_Y", "stub")):
        rec = json.loads((out / "submissions" / f"{file_stem(sid)}.json").read_text())
        assert rec["student"] == sid and rec["sha256"] == sha(nbs[key])
        assert f", {sid}" in (out / "feedback" / f"{file_stem(sid)}.md").read_text().splitlines()[0]
        assert (out / "feedback" / f"{file_stem(sid)}.html").is_file()
    # the class report links each student to their own page
    index = (out / "report" / "index.html").read_text()
    assert all(f"{file_stem(s)}.html" in index for s in recs)


def test_file_stem_is_stable_safe_and_injective():
    ids = ["x+y", "x_y", "x y", "X_Y", "x~y", "../etc/passwd", ".hidden", "", "a" * 300, "a" * 301,
           "Zoë", "Zoe\u0308", "con", "12341", "bob@example.edu", "unmatched file: a/b.ipynb"]
    stems = [file_stem(i) for i in ids]
    assert len(set(stems)) == len(ids) and len({s.lower() for s in stems}) == len(ids)
    assert stems == [file_stem(i) for i in ids]  # stable
    for s in stems:
        assert s and "/" not in s and not s.startswith(".") and len(s) <= 93
        assert set(s) <= set("abcdefghijklmnopqrstuvwxyz0123456789._@-~")


def test_unzipped_export_reads_as_the_zip(nbs, tmp_path):
    """The same Moodle export unzipped into a folder: same students, notebooks and flags; a
    symlink in a student's folder (to another student's notebook) is refused, never followed."""
    members = {"Alice Anderson_12341_assignsubmission_file_/tensor_edf.ipynb": nbs["correct"],
               "Alice Anderson_12341_assignsubmission_file_/tensor_edf/notes.ipynb": nbs["stub"],
               "Bob Brown_12342_assignsubmission_file_/Tensor EDF.ipynb": nbs["exp_bug"],
               "Bob Brown_12342_assignsubmission_file_/Alice Anderson_12341_assignsubmission_file_tensor_edf.ipynb":
                   nbs["stub"]}
    z = tmp_path / "export.zip"
    folder = tmp_path / "unzipped" / "CS101-Tensor EDF-42"
    with zipfile.ZipFile(z, "w") as zf:
        for name, data in members.items():
            put(zf, name, data)
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
    carol = folder / "Carol Cruz_12343_assignsubmission_file_"
    carol.mkdir()
    (carol / "tensor_edf.ipynb").symlink_to(folder / "Alice Anderson_12341_assignsubmission_file_" / "tensor_edf.ipynb")

    def summary(subs):
        return {s.student: (s.name, s.sha256 if s.data else s.error, sorted(f.split(":")[0] for f in s.flags))
                for s in subs}

    from_zip, from_folder = summary(discover(z, ASSIGNMENT)), summary(discover(tmp_path / "unzipped", ASSIGNMENT))
    assert from_zip["12341"] == from_folder["12341"] == ("Alice Anderson", sha(nbs["correct"]),
                                                         ["several files", "suspicious"])
    assert from_zip["12342"] == from_folder["12342"] == ("Bob Brown", sha(nbs["exp_bug"]),
                                                         ["misnamed", "several files", "suspicious"])
    assert set(from_folder) == {"12341", "12342", "12343"} and set(from_zip) == {"12341", "12342"}
    assert from_folder["12343"] == ("Carol Cruz", "symbolic link refused", ["suspicious"])


def test_zip_safety_inside_an_export(nbs, tmp_path):
    """Size and ratio caps hold inside a student's uploaded zip; zips nest one level only."""
    def zipped(members: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return buf.getvalue()

    z = tmp_path / "submissions.zip"
    with zipfile.ZipFile(z, "w") as zf:
        put(zf, "andersonalice_12341_900_work.zip", zipped({"tensor_edf.ipynb": b"0" * (30 << 20)}))
        put(zf, "brownbob_12342_901_outer.zip", zipped({"inner.zip": zipped({"tensor_edf.ipynb": nbs["correct"]})}))
        put(zf, "cruzcarol_12343_902_tensor_edf.ipynb", nbs["correct"])
    subs = {s.student: s for s in discover(z, ASSIGNMENT)}
    assert sorted(subs) == ["12341", "12342", "12343"]
    assert subs["12341"].data is None and "limit" in subs["12341"].error
    assert subs["12342"].data is None and "no notebook" in subs["12342"].error
    assert subs["12343"].sha256 == sha(nbs["correct"]) and subs["12343"].lms == "canvas"


def test_canvas_name_that_reads_as_another_students(nbs, tmp_path):
    """A student who renames themselves ``evil_12342`` in Canvas: the export's names then read
    two ways; the reading that clashes with Bob's own uploads is not taken, so the file stays
    the uploader's and Bob keeps his notebook. With nobody to settle it, the file is nobody's."""
    z = tmp_path / "submissions.zip"
    with zipfile.ZipFile(z, "w") as zf:
        put(zf, "brownbob_12342_900_tensor_edf.ipynb", nbs["correct"])
        put(zf, "evil_12342_55555_901_tensor_edf.ipynb", nbs["stub"], (2024, 3, 9, 0, 0, 0))
        put(zf, "mallory_77777_903_12343_5_tensor_edf.ipynb", nbs["stub"])  # no other upload to settle it
    found = discover(z, ASSIGNMENT)
    subs = {s.student: s for s in found}
    assert set(subs) == {"12342", "55555"}
    assert subs["12342"].sha256 == sha(nbs["correct"]) and subs["12342"].name == "brownbob"
    assert any("(55555)" in f for f in subs["12342"].flags)
    assert subs["55555"].sha256 == sha(nbs["stub"]) and subs["55555"].name == "evil_12342"
    assert any("(12342)" in f for f in subs["55555"].flags)
    (orphan,) = found.unmatched
    assert orphan["file"].endswith("!mallory_77777_903_12343_5_tensor_edf.ipynb")
    assert "77777, 903" in orphan["reason"] and "not graded" in orphan["reason"]
