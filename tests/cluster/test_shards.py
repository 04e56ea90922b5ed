"""A class split into shards (`backprop grade --shard K/N`) and joined again (`backprop merge`)
gives what one `backprop grade` gives: gradebook.csv byte for byte, the same records, feedback,
class report and nbgrader gradebook. The shipped Slurm job array runs on a real one-node Slurm
cluster; the Kubernetes manifests' commands run as their pods would."""
from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader.grading import sample
from grader.grading.shards import SHARD_FILE, shard_of

from . import slurm

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "tensor_edf"
BACKPROP = [sys.executable, "-m", "grader.cli"]
CLASS = [f"student{i:02d}" for i in range(8)]


def backprop(*args, cwd=None, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run(BACKPROP + [str(a) for a in args], capture_output=True, text=True, cwd=cwd)
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def grade(submitted: Path, course: Path, out: Path | None, *extra) -> subprocess.CompletedProcess:
    return backprop("grade", submitted, "-a", ASSIGNMENT, "--course", course, "--quiet",
                    *(["--out", out] if out else []), *extra)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A generated course (with its gradebook.db) and a class of 8 real notebooks, correct and
    buggy, under course/submitted/, one with nbgrader's timestamp.txt."""
    from grader.authoring.course import generate

    course = tmp_path_factory.mktemp("shards") / "course"
    generate([ASSIGNMENT], course)
    nb = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
    variants = [nb] + [v for p in sample.corpus("buggy")[:6] if (v := sample.with_variant(nb, p)) is not None]
    for i, student in enumerate(CLASS):
        sample.write(variants[i % len(variants)], course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    (course / "submitted" / CLASS[1] / ASSIGNMENT / "timestamp.txt").write_text("2026-03-01 10:00:00.000000 UTC\n")
    assert len({shard_of(s, 2) for s in CLASS}) == 2, "the class spans both halves"
    return course


@pytest.fixture(scope="module")
def one_run(course, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "grades"
    grade(course / "submitted", course, out, "--no-nbgrader")
    return out


@pytest.fixture(scope="module")
def nbgrader_run(course, tmp_path_factory) -> Path:
    """One run into a copy of the course, writing its gradebook.db and autograded/ as well."""
    a = tmp_path_factory.mktemp("one-nb") / "course"
    shutil.copytree(course, a)
    grade(a / "submitted", a, None)
    return a


VOLATILE = {"seconds", "isolation", "restarts", "budget"}  # how long, and in which sandbox: the run's, not the grade's


def _stable(x):
    if isinstance(x, dict):
        return {k: _stable(v) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [_stable(v) for v in x]
    return x


def outputs(out: Path) -> dict:
    """Everything a run writes that must not depend on how the class was split."""
    summary = json.loads((out / "summary.json").read_text())
    for k in ("graded_now", "reused", "messages", "outputs", "isolation_warning"):
        summary.pop(k)
    return {
        "gradebook.csv": (out / "gradebook.csv").read_bytes(),
        "results.json": _stable(json.loads((out / "results.json").read_text())),
        "summary.json": _stable(summary),
        "feedback": {p.name: p.read_bytes() for p in sorted((out / "feedback").glob("*.md"))},
        "pass_matrix": (out / "report" / "pass_matrix.csv").read_bytes(),
        "feedback_html": sorted(p.name for p in (out / "feedback").glob("*.html")),
    }


def db_rows(db: Path) -> list:
    with sqlite3.connect(db) as c:
        return sorted(c.execute(
            "select student.id, base_cell.name, grade.auto_score, submitted_assignment.timestamp from grade "
            "join base_cell on grade.cell_id = base_cell.id "
            "join submitted_notebook on grade.notebook_id = submitted_notebook.id "
            "join submitted_assignment on submitted_notebook.assignment_id = submitted_assignment.id "
            "join student on submitted_assignment.student_id = student.id").fetchall())


def test_shard_of_is_stable_balanced_and_deterministic():
    ids = [f"s{i:04d}" for i in range(4000)]
    for n in (2, 4, 8):
        counts = [0] * n
        for sid in ids:
            k = shard_of(sid, n)
            assert 1 <= k <= n
            counts[k - 1] += 1
        assert all(abs(c - len(ids) / n) < 0.15 * len(ids) / n for c in counts), counts
    # the id alone decides: the same in another process, whoever else is in the class
    code = "from grader.grading.shards import shard_of; print([shard_of(f's{i:04d}', 4) for i in range(50)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONHASHSEED="123"))
    assert other.stdout.strip() == str([shard_of(s, 4) for s in ids[:50]])


def test_two_shards_merged_equal_one_run(course, one_run, tmp_path):
    shards = []
    for k in (1, 2):
        out = tmp_path / f"shard-{k}"
        grade(course / "submitted", course, out, "--shard", f"{k}/2")
        marker = json.loads((out / SHARD_FILE).read_text())
        assert marker["shard"] == [k, 2] and marker["assignment"] == ASSIGNMENT
        assert marker["students"] == sorted(s for s in CLASS if shard_of(s, 2) == k)
        assert marker["class"]["size"] == len(CLASS)
        rows = (out / "gradebook.csv").read_text().splitlines()[1:]
        assert sorted(r.split(",")[0] for r in rows) == marker["students"]
        shards.append(out)
    merged = tmp_path / "merged"
    done = backprop("merge", *shards, "--course", course, "--out", merged, "--no-nbgrader")
    assert "8 submission" in done.stdout
    assert outputs(merged) == outputs(one_run)
    # the class has different grades in it, so the comparison compares something
    assert len({row["total"] for row in csv.DictReader((merged / "gradebook.csv").open())}) > 1


def test_merge_into_the_course_writes_the_same_gradebook_db_and_formgrader_files(course, nbgrader_run, tmp_path):
    """One run into course A, shards merged into a copy B of the same course: the same rows in
    gradebook.db (scores and submission times), the same autograded/ notebooks."""
    a, b = nbgrader_run, tmp_path / "b" / "course"
    shutil.copytree(course, b)
    shards = []
    for k in (1, 2):
        out = tmp_path / f"s{k}"
        grade(b / "submitted", b, out, "--shard", f"{k}/2")
        shards.append(out)
    assert not (b / "autograded").exists(), "a shard leaves gradebook.db and autograded/ to the merge"
    assert db_rows(b / "gradebook.db") == []
    backprop("merge", *shards, "--course", b)
    rows = db_rows(b / "gradebook.db")
    assert rows == db_rows(a / "gradebook.db")
    assert {r[0] for r in rows} == set(CLASS)
    assert any(r[3] is not None for r in rows if r[0] == CLASS[1]), "the timestamp.txt reached gradebook.db"
    ga, gb = a / "grades" / ASSIGNMENT, b / "grades" / ASSIGNMENT
    assert (gb / "gradebook.csv").read_bytes() == (ga / "gradebook.csv").read_bytes()
    assert outputs(gb) == outputs(ga)
    auto_a = {p.relative_to(a): p.read_bytes() for p in sorted((a / "autograded").rglob("*")) if p.is_file()}
    auto_b = {p.relative_to(b): p.read_bytes() for p in sorted((b / "autograded").rglob("*")) if p.is_file()}
    assert len(auto_a) >= len(CLASS) and auto_b == auto_a


def _forge(folder: Path, dest: Path, **changes) -> Path:
    shutil.copytree(folder, dest)
    marker = json.loads((dest / SHARD_FILE).read_text())
    marker.update(changes)
    (dest / SHARD_FILE).write_text(json.dumps(marker))
    return dest


def test_merge_refuses_missing_overlapping_and_mismatched_shards(course, tmp_path):
    shards = {}
    for spec in ("1/3", "2/3", "3/3", "1/2"):
        out = tmp_path / spec.replace("/", "-of-")
        grade(course / "submitted", course, out, "--shard", spec, "--no-report")
        shards[spec] = out
    s1, s2, s3 = shards["1/3"], shards["2/3"], shards["3/3"]
    m1 = json.loads((s1 / SHARD_FILE).read_text())
    other = next(s for s in CLASS if s not in m1["students"])
    cases = [
        ([s1, s2], "missing shard(s) 3/3"),
        ([s1, s1, s2, s3], "shard 1/3 given twice"),
        ([s1, s2, s3, shards["1/2"]], "shards of different splits"),
        ([s1, s2, _forge(s3, tmp_path / "other-a", assignment="forward_mode")], "shards of different assignments"),
        ([s1, s2, _forge(s3, tmp_path / "other-course", course="0" * 64)], "different courses"),
        ([s1, s2, _forge(s3, tmp_path / "other-grader", grader="0" * 64)], "different versions of the grader"),
        ([s1, s2, _forge(s3, tmp_path / "other-class", **{"class": {"size": 9, "digest": "0" * 64}})],
         "different classes"),
        ([s1, s2, _forge(s3, tmp_path / "overlap", students=sorted(json.loads((s3 / SHARD_FILE).read_text())
                                                                   ["students"] + m1["students"][:1]))],
         "overlapping shards"),
        ([_forge(s1, tmp_path / "stranger", students=sorted(m1["students"] + [other])), s2, s3],
         "belongs to shard"),
        ([tmp_path / "nope", s2, s3], "does not exist"),
    ]
    for folders, words in cases:
        done = backprop("merge", *folders, "--course", course, "--out", tmp_path / "m", "--no-nbgrader",
                        check=False)
        assert done.returncode == 2, (words, done.stdout + done.stderr)
        err = done.stderr.strip()
        assert words in err and len(err.splitlines()) == 1 and err.startswith("backprop merge: error:"), err
    assert not (tmp_path / "m" / "gradebook.csv").exists()
    # a shard whose run did not finish (no marker) is no shard
    (s3 / SHARD_FILE).unlink()
    done = backprop("merge", s1, s2, s3, "--course", course, "--out", tmp_path / "m", check=False)
    assert done.returncode == 2 and f"has no {SHARD_FILE}" in done.stderr
    # the three shards merge once whole again
    grade(course / "submitted", course, s3, "--shard", "3/3", "--no-report")
    backprop("merge", s1, s2, s3, "--course", course, "--out", tmp_path / "m", "--no-nbgrader", "--no-report")
    assert len((tmp_path / "m" / "gradebook.csv").read_text().splitlines()) == 1 + len(CLASS)


def test_a_class_changed_between_shards_is_refused(course, tmp_path):
    sub = tmp_path / "submitted"
    shutil.copytree(course / "submitted", sub)
    grade(sub, course, tmp_path / "a", "--shard", "1/2", "--no-report")
    late = sub / "latecomer" / ASSIGNMENT
    shutil.copytree(sub / CLASS[0] / ASSIGNMENT, late)
    grade(sub, course, tmp_path / "b", "--shard", "2/2", "--no-report")
    done = backprop("merge", tmp_path / "a", tmp_path / "b", "--course", course, "--out", tmp_path / "m",
                    "--no-nbgrader", check=False)
    assert done.returncode == 2 and "different classes" in done.stderr, done.stderr
    # the latecomer gone again, but a student of shard 1 resubmitted after it was graded
    shutil.rmtree(late.parent)
    first = next(s for s in CLASS if shard_of(s, 2) == 1)
    other = next(s for s in CLASS if shard_of(s, 2) == 1 and s != first and
                 (sub / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes() !=
                 (sub / first / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes())
    shutil.copy(sub / other / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", sub / first / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    grade(sub, course, tmp_path / "b", "--shard", "2/2", "--no-report")
    done = backprop("merge", tmp_path / "a", tmp_path / "b", "--course", course, "--out", tmp_path / "m",
                    "--no-nbgrader", check=False)
    assert done.returncode == 2 and "different classes" in done.stderr, done.stderr
    grade(sub, course, tmp_path / "a", "--shard", "1/2", "--no-report")
    backprop("merge", tmp_path / "a", tmp_path / "b", "--course", course, "--out", tmp_path / "m", "--no-nbgrader")


def test_empty_shard_writes_valid_empty_outputs_and_merges(course, tmp_path):
    """A class of one: one shard holds the student, the other none."""
    student = CLASS[0]
    sub = tmp_path / "submitted"
    shutil.copytree(course / "submitted" / student, sub / student)
    one = tmp_path / "one"
    grade(sub, course, one, "--no-nbgrader")
    mine = shard_of(student, 2)
    outs = {}
    for k in (1, 2):
        outs[k] = tmp_path / f"shard-{k}"
        grade(sub, course, outs[k], "--shard", f"{k}/2")
    empty = outs[3 - mine]
    assert (empty / "gradebook.csv").read_text().count("\n") == 1  # the header only
    assert json.loads((empty / "results.json").read_text()) == []
    assert json.loads((empty / "summary.json").read_text())["submissions"] == 0
    assert (empty / "report" / "index.html").is_file()
    assert json.loads((empty / SHARD_FILE).read_text())["students"] == []
    merged = tmp_path / "merged"
    backprop("merge", outs[1], outs[2], "--course", course, "--out", merged, "--no-nbgrader")
    assert outputs(merged) == outputs(one)


def test_bad_shard_spec_is_a_clear_error(course, tmp_path):
    for spec in ("0/2", "3/2", "1-2", "a/b", "1/0"):
        done = backprop("grade", course / "submitted", "-a", ASSIGNMENT, "--course", course, "--shard", spec,
                        "--out", tmp_path / "x", check=False)
        assert done.returncode == 2 and "--shard takes K/N" in done.stderr, (spec, done.stderr)
    assert not (tmp_path / "x").exists()


def _path_with_backprop(tmp: Path) -> dict:
    """PATH with a `backprop` that is this interpreter's grader, as an installed one would be."""
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    exe = bindir / "backprop"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m grader.cli \"$@\"\n")
    exe.chmod(0o755)
    return dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_slurm_job_array_on_a_real_cluster(course, nbgrader_run, tmp_path):
    """examples/slurm/grade-class.sh: `sbatch --wait` of the shipped grade-array.sbatch as a
    2-task job array on a real one-node cluster, then `backprop merge`."""
    why = slurm.missing()
    if why:
        pytest.skip(why)
    work = tmp_path / "work"
    shutil.copytree(course, work / "course")
    env = _path_with_backprop(tmp_path)
    with slurm.cluster() as slurm_env:
        env["SLURM_CONF"] = slurm_env["SLURM_CONF"]  # the rest of ours: PATH holds this grader's backprop
        env.update(OUT="grades-shards/" + ASSIGNMENT)
        done = subprocess.run(["bash", str(REPO / "examples" / "slurm" / "grade-class.sh"), "course/submitted",
                               ASSIGNMENT, "2"], cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    logs = sorted(work.glob("backprop-grade-*.log"))
    assert len(logs) == 2, "two array tasks ran"
    for k in (1, 2):
        marker = json.loads((work / "grades-shards" / ASSIGNMENT / f"shard-{k}-of-2" / SHARD_FILE).read_text())
        assert marker["shard"] == [k, 2] and marker["students"]
    merged, one = work / "course" / "grades" / ASSIGNMENT, nbgrader_run / "grades" / ASSIGNMENT
    assert (merged / "gradebook.csv").read_bytes() == (one / "gradebook.csv").read_bytes()
    assert outputs(merged) == outputs(one)
    assert db_rows(work / "course" / "gradebook.db") == db_rows(nbgrader_run / "gradebook.db")


def _container(manifest: str) -> tuple[dict, dict]:
    job = yaml.safe_load((REPO / "examples" / "kubernetes" / manifest).read_text())
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    return job["spec"], job["spec"]["template"]["spec"]["containers"][0]


def test_kubernetes_manifests_parse_and_call_the_real_commands():
    spec, c = _container("grade-job.yaml")
    assert spec["completionMode"] == "Indexed"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert int(env["SHARDS"]) == spec["completions"]
    script = " ".join(c["command"] + c["args"])
    assert "backprop grade" in script and '--shard "$K/$SHARDS"' in script and "JOB_COMPLETION_INDEX + 1" in script
    _, m = _container("merge-job.yaml")
    assert "backprop merge" in " ".join(m["command"] + m["args"])
    image = (REPO / "examples" / "kubernetes" / "Containerfile").read_text()
    assert c["image"].split(":")[0] in (REPO / "examples" / "kubernetes" / "Containerfile").read_text()
    for line in image.splitlines():  # every folder the image copies exists in the project
        if line.startswith("COPY "):
            for part in line.split()[1:-1]:
                assert (REPO / part).exists(), line


def test_kubernetes_indexed_job_pods_run_as_written(course, nbgrader_run, tmp_path):
    """Each pod's shell command of the shipped manifests, run as its pod would (its index set,
    /data its working folder), then the merge Job's: the outputs of one run."""
    data = tmp_path / "data"
    shutil.copytree(course, data / "course")
    env = _path_with_backprop(tmp_path)

    def pod(manifest: str, index: int | None) -> None:
        _, c = _container(manifest)
        penv = dict(env, **{e["name"]: e["value"] for e in c.get("env", [])})
        if index is not None:
            penv["JOB_COMPLETION_INDEX"] = str(index)
        done = subprocess.run(c["command"] + c["args"], cwd=data, env=penv, capture_output=True, text=True,
                              timeout=1800)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    spec, _ = _container("grade-job.yaml")
    for i in range(spec["completions"]):
        pod("grade-job.yaml", i)
    pod("merge-job.yaml", None)
    assert outputs(data / "course" / "grades" / ASSIGNMENT) == outputs(nbgrader_run / "grades" / ASSIGNMENT)
    assert db_rows(data / "course" / "gradebook.db") == db_rows(nbgrader_run / "gradebook.db")
