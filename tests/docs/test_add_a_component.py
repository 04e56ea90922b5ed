"""docs/add-a-component.md, done as written: its blocks are applied to a copy of the
repository (reference/, grader/ and assignments/tensor_edf/ only), and the copy's own
``backprop`` regenerates the assignment (the source earns full marks, the stubs fail
cleanly), audits the new component, and grades a correct and a buggy notebook."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from .walkthrough import apply, copy_repository, steps


def backprop(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """``backprop`` of the copy: its packages first on the path, run from inside it."""
    env = {**os.environ, "PYTHONPATH": str(repo), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=3600)


def test_the_walkthrough_touches_only_reference_and_the_assignment():
    edits = steps()
    assert len(edits) == 4
    assert all(e["path"].startswith(("reference/", "assignments/tensor_edf/")) for e in edits)


@pytest.fixture(scope="module")
def walked(tmp_path_factory) -> Path:
    repo = copy_repository(tmp_path_factory.mktemp("walkthrough") / "repo")
    probe = subprocess.run([sys.executable, "-c", "import grader, reference; print(grader.__file__, reference.__file__)"],
                           cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True)
    assert all(Path(p).is_relative_to(repo) for p in probe.stdout.split()), probe.stdout  # the copy, not the checkout
    before = backprop(repo, "generate", "tensor_edf", "--no-verify", "--course", str(repo / "course"))
    assert before.returncode == 0, before.stderr
    apply(repo, steps())
    return repo


def test_each_missing_piece_is_named_by_generate(tmp_path):
    """The cells and the test without the class: the template names the missing class. The
    class without its contract: generate names the declaration to add. Nothing is written."""
    edits = steps()
    assignment_only = [e for e in edits if e["path"].startswith("assignments/")]
    repo = copy_repository(tmp_path / "a" / "repo")
    apply(repo, assignment_only)
    run = backprop(repo, "generate", "tensor_edf", "--no-verify", "--course", str(repo / "course"))
    assert run.returncode == 1 and "reference.operations has no object named 'LeakyReLU'" in run.stderr

    undeclared = [dict(e, code=e["code"].split("\n\ndeclare(")[0] + "\n") if e["path"] == "reference/operations.py"
                  else e for e in edits]
    assert "declare(" not in undeclared[0]["code"] and "class LeakyReLU" in undeclared[0]["code"]
    repo = copy_repository(tmp_path / "b" / "repo")
    apply(repo, undeclared)
    run = backprop(repo, "generate", "tensor_edf", "--no-verify", "--course", str(repo / "course"))
    assert run.returncode == 1
    assert "suite.toml test 'leaky_relu' grades LeakyReLU, which reference/ does not declare: " \
           "add a contract beside its class" in run.stderr
    assert "Traceback" not in run.stderr and not (repo / "course" / "source").exists()


def test_generate_audit_and_grade_the_new_component(walked):
    repo = walked
    course = repo / "course"
    gen = backprop(repo, "generate", "tensor_edf", "--course", str(course))  # runs both notebooks
    assert gen.returncode == 0, gen.stderr
    assert "15 tests, 28 points" in gen.stdout
    source = nbformat.read(course / "source" / "tensor_edf" / "tensor_edf.ipynb", as_version=4)
    assert any("### `LeakyReLU` (2 points)" in c.source for c in source.cells if c.cell_type == "markdown")
    release = (course / "release" / "tensor_edf" / "tensor_edf.ipynb").read_text()
    assert "class LeakyReLU" in release and "0.01 * self.x.value" not in release  # stubs, no solution

    audit = backprop(repo, "audit", "tensor_edf", "--only", "LeakyReLU", "--summary", "--json",
                     str(repo / "audit.json"))
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-2000:]
    report = json.loads((repo / "audit.json").read_text())
    assert report["ok"] and report["criteria"]["mutants_killed_on_own_test"]["ok"]
    mutants = report["mutants"]
    assert {m["unit"] for m in mutants} == {"LeakyReLU.forward", "LeakyReLU.backward"}
    assert all(m["test"] == "leaky_relu" for m in mutants)
    killed = [m for m in mutants if m["verdict"] == "killed"]
    assert len(killed) >= 10 and {m["verdict"] for m in mutants} <= {"killed", "equivalent"}
    assert all(max(m["scores"]["leaky_relu"]) < 1.0 for m in killed)  # its own test takes points from each

    subs = repo / "submissions"
    subs.mkdir()
    nbformat.write(source, subs / "correct.ipynb")
    cell = next(c for c in source.cells if c.get("id") == "leakyrelu-solution")
    slope = "np.where(self.x.value > 0, 1.0, 0.01)"
    assert cell.source.count(slope) == 1
    cell.source = cell.source.replace(slope, "np.where(self.x.value > 0, 1.0, 0.1)")  # wrong slope for x < 0
    nbformat.write(source, subs / "buggy.ipynb")
    grade = backprop(repo, "grade", str(subs), "-a", "tensor_edf", "--course", str(course), "--no-nbgrader",
                     "--no-report", "--workers", "1")
    assert grade.returncode == 0, grade.stderr
    records = {r["student"]: r for r in json.loads((course / "grades" / "tensor_edf" / "results.json").read_text())}
    correct, buggy = records["correct"], records["buggy"]
    assert correct["total"] == correct["max"] == 28.0
    tests = {t["id"]: t for t in buggy["tests"]}
    leaky = tests.pop("leaky_relu")
    assert leaky["points"] == 0.0 and leaky["result"]["diagnosis"] == "leaky_slope"
    assert "wrong slope for x < 0" in leaky["result"]["message"]
    assert all(t["points"] == t["max_points"] for t in tests.values())  # charged once, on its own test
