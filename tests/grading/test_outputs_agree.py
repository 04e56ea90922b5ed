"""Every output of one batch agrees on every number (issue 13.2, 13.3).

A small real class is graded by the real CLI into a real nbgrader course; then each output
is parsed on its own (gradebook.csv, results.json, summary.json, pass_matrix.csv,
gradebook.db, Markdown and HTML feedback, the class report, the terminal summaries of
``backprop grade`` and ``backprop report``) and compared number by number.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.grading import sample
from grader.reports.records import points, score_parts, state

REPO = Path(__file__).resolve().parents[2]
A = "tensor_edf"


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=REPO, capture_output=True, text=True,
                          check=check)


def build_class(nb: dict, root: Path) -> Path:
    """Full marks, two partial-credit bugs (one totals 22.875 before rounding), a scan flag,
    an empty file, a corrupt notebook and a notebook that loops forever."""
    sample.write(nb, root / "ada.ipynb")
    sample.write(sample.with_variant(nb, sample.CORPUS / "buggy" / "mul_upstream_ignored.py"), root / "bob.ipynb")
    sample.write(sample.with_variant(nb, sample.CORPUS / "buggy" / "relu_inplace_forward.py"), root / "cy.ipynb")
    sample.write(sample.append_code(nb, "sigmoid-solution", "import os\n"), root / "dee.ipynb")
    (root / "eve.ipynb").write_bytes(b"")
    (root / "fay.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "x = ', encoding="utf-8")
    sample.write(sample.add_cell(nb, "while True:\n    pass\n", after="relu-solution", cell_id="spin"),
                 root / "gus.ipynb")
    return root


# -- one parser per output ---------------------------------------------------------------------

def parse_csv(path: Path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def parse_md(text: str) -> dict:
    score = re.search(r"^\*\*Score: ([\d.]+) / ([\d.]+)\*\* \(([\d.]+)%\)$", text, re.M)
    rows = re.findall(r"^\| (\w+) \| ([\d.]+) / ([\d.]+)(?: \(adjusted by a TA\))?(?: \+ ([\d.]+) extra credit)? \| "
                      r"(passed|partial|failed)", text, re.M)
    parts = re.search(r"^Points: (.*? = [\d.]+)\.", text, re.M)
    return {"total": float(score[1]), "max": float(score[2]), "percent": float(score[3]),
            "tests": {tid: (float(p), float(m), float(x or 0), st) for tid, p, m, x, st in rows},
            "parts": parts[1] if parts else None}


def parse_feedback_html(text: str) -> dict:
    total = re.search(r'<span class="big">([\d.]+)</span> / ([\d.]+) points <span class="muted">\(([\d.]+)%\)',
                      text)
    rows = re.findall(r'<tr class="test row-(\w+)" data-test="(\w+)">.*?<td class="num">([\d.]+) / ([\d.]+)'
                      r'(?: <span class="muted">adjusted by a TA</span>)?'
                      r'(?: <span class="muted">\+ ([\d.]+) extra credit</span>)?</td>', text)
    parts = re.search(r'<div class="muted parts">([^<]*)</div>', text)
    return {"total": float(total[1]), "max": float(total[2]), "percent": float(total[3]),
            "tests": {tid: (float(p), float(m), float(x or 0), st) for st, tid, p, m, x in rows},
            "parts": html.unescape(parts[1]) if parts else None}


def section(text: str, sid: str) -> str:
    start = text.index(f'id="{sid}"')
    return text[start:text.index("</section>", start)]


def parse_report(text: str) -> dict:
    students = {html.unescape(s): (float(p), float(m), float(pc)) for s, p, m, pc in re.findall(
        r'<tr data-student="([^"]+)"><td>.*?</td><td class="num">([\d.]+) / ([\d.]+)</td>'
        r'<td class="num">([\d.]+)%</td>', section(text, "students"))}
    parts = {html.unescape(s): html.unescape(p).strip() for s, p in re.findall(
        r'<tr data-student="([^"]+)">.*?<td class="parts">([^<]*)', section(text, "students"))}
    tests = {t: tuple(float(x) for x in rest) for t, *rest in re.findall(
        r'<tr data-test="(\w+)"><td><code>\w+</code></td><td class="num">([\d.]+)</td>'
        r'<td class="num">(\d+) \([\d.]+%\)</td><td class="num">(\d+)</td><td class="num">(\d+)</td>'
        r'<td class="num">([\d.]+)</td>', section(text, "tests"))}
    stats = dict(re.findall(r'data-stat="(\w+)"><div class="v">([^<]*)</div>', text))
    attention = {html.unescape(s): html.unescape(body) for s, body in re.findall(
        r'<tr data-student="([^"]+)">(.*?)</tr>', section(text, "attention"))}
    return {"students": students, "parts": parts, "tests": tests, "stats": stats, "attention": attention}


def parse_terminal(text: str) -> dict:
    mean = re.search(r"mean ([\d.]+) / ([\d.]+) \(([\d.]+)%\), median ([\d.]+)(?: / [\d.]+)? \(([\d.]+)%\)", text)
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and re.fullmatch(r"[a-z_0-9]+", parts[0]) and all(
                re.fullmatch(r"[\d.]+", x) for x in parts[1:6]):
            rows[parts[0]] = tuple(float(x) for x in parts[1:6])
    return {"mean": float(mean[1]), "max": float(mean[2]), "mean_percent": float(mean[3]),
            "median": float(mean[4]), "median_percent": float(mean[5]), "tests": rows}


def db_scores(course: Path, students) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        out = {}
        for s in students:
            sub = gb.find_submission_notebook(A, A, s)
            out[s] = {"raw": sub.score, "late_penalty": sub.late_submission_penalty or 0.0,
                      "tests": {g.name.removeprefix("test_"): g.score for g in sub.grades}}
        return out


def parse_export(text: str) -> dict[str, dict]:
    return {r["id"]: r for r in csv.DictReader(io.StringIO(text))}


# -- the comparison ---------------------------------------------------------------------------

def assert_outputs_agree(out: Path, course: Path, terminal: list[str], export: str | None = None) -> list[dict]:
    """Parse every output of ``out`` and compare each number with results.json's; return it.
    ``export``: ``backprop export grades --format csv``'s text, compared too."""
    results = json.loads((out / "results.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    gb = parse_csv(out / "gradebook.csv")
    pm = parse_csv(out / "report" / "pass_matrix.csv")
    report = parse_report((out / "report" / "index.html").read_text(encoding="utf-8"))
    db = db_scores(course, [r["student"] for r in results])
    assert set(gb) == set(pm) == set(report["students"]) == set(db) == {r["student"] for r in results}
    assert summary["submissions"] == len(results)

    ex = parse_export(export) if export is not None else None
    if ex is not None:
        assert set(ex) == set(gb)
    for r in results:
        s = r["student"]
        # the one rounding rule: every number already is its own 2-decimal rounding
        assert all(t["points"] == points(t["points"]) for t in r["tests"]) and r["total"] == points(r["total"])
        # raw = tests + extra credit (nbgrader's notebook score); total = raw - late penalty, never below 0
        assert r["extra_credit"] == points(sum(t.get("extra_credit", 0) for t in r["tests"]))
        assert r["raw"] == points(sum(t["points"] for t in r["tests"]) + r["extra_credit"])
        assert r["total"] == points(max(0.0, r["raw"] - r["late_penalty"]))
        md = parse_md((out / "feedback" / f"{s}.md").read_text(encoding="utf-8"))
        fb = parse_feedback_html((out / "feedback" / f"{s}.html").read_text(encoding="utf-8"))
        for view in (md, fb):
            assert (view["total"], view["max"], view["percent"]) == (r["total"], r["max"], r["percent"]), s
            assert view["parts"] == score_parts(r), s
        # the report's column of score parts: there when anyone's total is more than its tests
        assert (s in report["parts"]) == any(score_parts(x) for x in results)
        if s in report["parts"]:
            assert report["parts"][s].startswith(score_parts(r) or "")
        for k in ("extra_credit", "raw", "late_penalty", "total", "max"):
            assert float(gb[s][k]) == float(pm[s][k]) == r[k], (s, k)
        assert r["raw"] == pytest.approx(db[s]["raw"], abs=1e-9)
        assert r["late_penalty"] == points(db[s]["late_penalty"])
        if ex is not None:  # the LMS gets the same grade
            assert (float(ex[s]["points"]), float(ex[s]["max"]), float(ex[s]["percent"])) == \
                (r["total"], r["max"], r["percent"])
            assert float(ex[s]["late_penalty"]) == r["late_penalty"] and ex[s]["name"] == (r.get("name") or "")
        assert float(gb[s]["percent"]) == float(pm[s]["percent"]) == r["percent"]
        assert report["students"][s] == (r["total"], r["max"], r["percent"])
        assert gb[s]["status"] == pm[s]["status"] == r["status"]
        assert gb[s]["name"] == pm[s]["name"] == (r.get("name") or "")
        for t in r["tests"]:
            tid, pts, mx = t["id"], t["points"], t["max_points"]
            # passed: full marks, partial: some, failed: none (a 0-point diagnostic test: its verdict)
            assert t["state"] == (state(pts, mx) if mx else "passed" if t["result"]["passed"] else "failed")
            extra = t.get("extra_credit", 0.0)
            assert float(gb[s][tid]) == pts and pts + extra == pytest.approx(db[s]["tests"][tid], abs=1e-9)
            assert pm[s][tid] == ("1" if t["state"] == "passed" else "0")
            assert md["tests"][tid] == fb["tests"][tid] == (pts, mx, extra, t["state"]), (s, tid)
        # the TA's reasons, the same list everywhere
        reasons = r["attention"]
        assert gb[s]["flags"] == " | ".join(reasons)
        flagged = {f["student"]: f["reasons"] for f in summary["flagged"]}
        assert flagged.get(s, []) == reasons
        if reasons:
            assert all(x[:200] in report["attention"][s] for x in reasons)
        else:
            assert s not in report["attention"]

    totals = [r["total"] for r in results]
    import statistics

    assert summary["mean"] == points(statistics.fmean(totals)) and summary["median"] == points(statistics.median(totals))
    mx = results[0]["max"]
    assert report["stats"]["mean"] == f"{summary['mean']:g} / {mx:g}"
    for t in summary["tests"]:
        entries = [e for r in results for e in r["tests"] if e["id"] == t["id"]]
        counts = [sum(e["state"] == k for e in entries) for k in ("passed", "partial", "failed")]
        assert [t["passed"], t["partial"], t["failed"]] == counts
        assert t["mean_points"] == points(statistics.fmean(e["points"] for e in entries))
        assert report["tests"][t["id"]] == (t["max_points"], *counts, t["mean_points"])
    for text in terminal:
        term = parse_terminal(text)
        assert (term["mean"], term["max"], term["mean_percent"], term["median"], term["median_percent"]) == \
            (summary["mean"], summary["max_points"], summary["mean_percent"], summary["median"],
             summary["median_percent"])
        for t in summary["tests"]:
            assert term["tests"][t["id"]] == (t["passed"], t["partial"], t["failed"], t["mean_points"],
                                              t["max_points"])
    return results


@pytest.fixture(scope="module")
def graded(course, submitted_nb, tmp_path_factory):
    root = tmp_path_factory.mktemp("agree")
    own = root / "course"  # a copy: the course folder is relocatable, and this test's database is its own
    shutil.copytree(course, own)
    cls = build_class(submitted_nb, root / "class")
    out = root / "out"
    common = ["--assignment", A, "--course", str(own), "--out", str(out), "--timeout", "2"]
    r = cli("grade", str(cls), *common)
    return own, cls, out, r.stdout


def test_every_output_agrees_on_every_number(graded):
    course, cls, out, terminal = graded
    rep = cli("report", "-a", A, "--course", str(course), "--out", str(out))
    results = assert_outputs_agree(out, course, [terminal, rep.stdout])
    by = {r["student"]: r for r in results}
    assert by["ada"]["total"] == 26 and by["ada"]["attention"] == []
    assert points(22.875) == 22.88 and points(2.675) == 2.68  # halves up, from the decimal form
    for r in results:  # each test's points are its score times its points, by the one rule
        for t in r["tests"]:
            assert t["auto_points"] == points(t["result"]["score"] * t["max_points"]), (r["student"], t["id"])
    assert by["eve"]["status"] == "error" and by["eve"]["error"].startswith("empty file")
    assert "JSON" not in by["eve"]["error"]
    assert by["fay"]["status"] == "error" and "not valid JSON" in by["fay"]["error"]
    assert any(re.match(r"cell [\w-]+: timeout \(took longer than 2 s\)", x) for x in by["gus"]["attention"])
    assert any(f.startswith("suspicious: cell sigmoid-solution imports os") for f in by["dee"]["attention"])
    assert sorted(s for s, r in by.items() if r["attention"]) == ["dee", "eve", "fay", "gus"]
    # the broken notebook says once what is wrong
    md = (out / "feedback" / "fay.md").read_text()
    assert md.count("not valid JSON") == 1 and "not graded" not in md
    page = (out / "feedback" / "fay.html").read_text()
    assert page.count("not valid JSON") == 1 and "not graded" not in page and 'class="card failure' not in page
    assert "needs a TA's look (4)" in terminal


def test_flags_from_any_producer_reach_every_output(graded):
    """Another stage (the LMS reader, the forging checks) only appends to a record's flags."""
    course, cls, out, _ = graded
    path = out / "submissions" / "cy.json"
    rec = json.loads(path.read_text())
    rec["flags"] = rec["flags"] + ["several files: cy uploaded 2 notebooks; graded the newest",
                                   {"kind": "forging", "reason": "rebinds probe"}]
    path.write_text(json.dumps(rec))
    rep = cli("report", "-a", A, "--course", str(course), "--out", str(out))
    results = assert_outputs_agree(out, course, [rep.stdout])
    cy = next(r for r in results if r["student"] == "cy")
    assert cy["attention"] == ["several files: cy uploaded 2 notebooks; graded the newest", "forging: rebinds probe"]
    assert "several files" in rep.stdout
    # the student reads only that a TA will look
    md = (out / "feedback" / "cy.md").read_text()
    assert "reviewed by a TA" in md and "rebinds probe" not in md


def test_one_batch_per_output_folder(graded, submitted_nb, tmp_path):
    """Another input graded into the same folder: the others' records move aside, and the CSV,
    the report and gradebook.db list the same students; --keep-others keeps them."""
    from nbgrader.api import Gradebook

    course, cls, out, _ = graded
    before = {r["student"] for r in json.loads((out / "results.json").read_text())}
    other = tmp_path / "other"
    sample.write(submitted_nb, other / "ada.ipynb")
    sample.write(sample.with_variant(submitted_nb, sample.CORPUS / "buggy" / "exp_assign.py"), other / "zed.ipynb")
    r = cli("grade", str(other), "--assignment", A, "--course", str(course), "--out", str(out), "--timeout", "2")
    moved = sorted(before - {"ada"})
    assert f"moved the records of {len(moved)} student(s) not in this input to" in r.stdout
    assert f"removed {len(moved)} of their submission(s) from gradebook.db" in r.stdout
    (stale,) = (out / "submissions" / ".stale").iterdir()
    assert sorted(p.stem for p in stale.glob("*.json")) == moved
    # their autograded/ folders go with them: nbgrader generate_feedback reads every one
    assert not any((course / "autograded" / s / A).exists() for s in moved)
    assert sorted(p.name for p in (stale / "autograded").iterdir()) == moved
    assert all((stale / "autograded" / s / A / f"{A}.ipynb").is_file() for s in moved)
    results = assert_outputs_agree(out, course, [r.stdout])
    assert [x["student"] for x in results] == ["ada", "zed"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        in_db = {s.student_id for s in gb.find_assignment(A).submissions}
    assert in_db >= {"ada", "zed"} and not in_db & set(moved)

    sample.write(submitted_nb, tmp_path / "third" / "bob.ipynb")
    r = cli("grade", str(tmp_path / "third"), "--assignment", A, "--course", str(course), "--out", str(out),
            "--timeout", "2", "--keep-others")
    assert "moved the records" not in r.stdout
    results = assert_outputs_agree(out, course, [r.stdout])
    assert [x["student"] for x in results] == ["ada", "bob", "zed"]


def test_the_course_folder_is_relocatable(graded, tmp_path):
    """nbgrader_config.py names no absolute path: a moved course reads its own gradebook.db."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    course = graded[0]
    assert str(course) not in (course / "nbgrader_config.py").read_text()
    moved = tmp_path / "elsewhere" / "course"
    shutil.copytree(course, moved)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(moved)).load_config()
    coursedir = CourseDirectory(config=config, root=str(moved))
    assert coursedir.db_url == f"sqlite:///{moved / 'gradebook.db'}"


PER_HOUR = '''\
import math

from nbgrader.plugins import LateSubmissionPlugin


class PerHour(LateSubmissionPlugin):
    """One point per started hour late."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return float(math.ceil(total_seconds_late / 3600))
'''


def test_extra_credit_and_late_penalties_agree_everywhere(course, submitted_nb, tmp_path):
    """The course's late policy (a LateSubmissionPlugin of its own, nbgrader's timestamp.txt) and
    a TA's extra credit and manual grade: every output shows the tests' points, the extra credit,
    the penalty and the grade, the same numbers; `backprop report` computes the penalty again
    from the adjusted score; `backprop export grades` exports the grade."""
    import datetime

    from nbgrader.api import Gradebook

    own = tmp_path / "course"
    shutil.copytree(course, own)
    (own / "late_plugin.py").write_text(PER_HOUR, encoding="utf-8")
    with open(own / "nbgrader_config.py", "a", encoding="utf-8") as f:
        f.write("c.AssignLatePenalties.plugin_class = 'late_plugin.PerHour'\n")
    db = f"sqlite:///{own / 'gradebook.db'}"
    with Gradebook(db) as gb:
        gb.update_or_create_assignment(A, duedate=datetime.datetime(2026, 3, 1, 12, 0))
    submitted = tmp_path / "submitted"
    buggy = sample.CORPUS / "buggy"
    for student, variant, when in (("ada", None, "2026-03-01 11:00:00 UTC"),
                                   ("bob", "mul_upstream_ignored.py", "2026-03-01 14:30:00 UTC"),  # 3 started hours
                                   ("cy", "relu_inplace_forward.py", "2026-03-03 12:00:00 UTC")):   # 48 h: all points
        nb = submitted_nb if variant is None else sample.with_variant(submitted_nb, buggy / variant)
        sample.write(nb, submitted / student / A / f"{A}.ipynb")
        (submitted / student / A / "timestamp.txt").write_text(when, encoding="utf-8")
    out = tmp_path / "out"
    first = cli("grade", str(submitted), "--assignment", A, "--course", str(own), "--out", str(out), "--timeout", "2")
    export = ["export", "grades", A, "--course", str(own), "--grades", str(out), "--out", "-"]
    recs = {r["student"]: r for r in assert_outputs_agree(out, own, [first.stdout], cli(*export, "-f", "csv").stdout)}
    ada, bob, cy = recs["ada"], recs["bob"], recs["cy"]
    assert (ada["late_penalty"], ada["total"], ada["max"]) == (0, 26, 26)
    assert 0 < bob["raw"] < 26 and bob["late_penalty"] == 3 and bob["total"] == points(bob["raw"] - 3)
    assert cy["raw"] > 0 and cy["late_penalty"] == cy["raw"] and cy["total"] == 0  # clamped to the score
    gb_csv = parse_csv(out / "gradebook.csv")
    assert (gb_csv["ada"]["late"], gb_csv["bob"]["late"], gb_csv["cy"]["late"]) == ("", "2 h 30 min", "2 d")
    assert "late: 2 submission(s), 2 with a penalty" in first.stdout
    md = (out / "feedback" / "bob.md").read_text()
    assert f"Points: {bob['raw']:g} (tests) - 3 late penalty = {bob['total']:g}." in md
    assert "Submitted 2 h 30 min after the due date" in md

    # the TA: extra credit for ada and cy, full marks by hand for bob's mul (formgrader's columns)
    mul = next(t for t in bob["tests"] if t["id"] == "mul")
    assert mul["points"] < mul["max_points"]
    with Gradebook(db) as gb:
        gb.find_grade("test_mul", A, A, "ada").extra_credit = 1.5
        gb.find_grade("test_add", A, A, "cy").extra_credit = 2
        gb.find_grade("test_mul", A, A, "bob").manual_score = mul["max_points"]
        gb.db.commit()
    rep = cli("report", "-a", A, "--course", str(own), "--out", str(out))
    assert "extra credit on 2 test(s)" in rep.stdout
    ex = cli(*export, "-f", "csv").stdout
    again = {r["student"]: r for r in assert_outputs_agree(out, own, [rep.stdout], ex)}
    assert (again["ada"]["extra_credit"], again["ada"]["raw"], again["ada"]["total"]) == (1.5, 27.5, 27.5)
    assert next(t for t in again["ada"]["tests"] if t["id"] == "mul")["extra_credit"] == 1.5
    assert again["bob"]["raw"] == points(bob["raw"] - mul["points"] + mul["max_points"])
    assert again["bob"]["total"] == points(again["bob"]["raw"] - 3)
    # the penalty follows the score it is clamped to: computed again by `backprop report`
    assert again["cy"]["raw"] == points(cy["raw"] + 2) and again["cy"]["late_penalty"] == again["cy"]["raw"]
    assert again["cy"]["total"] == 0
    assert "1.5 extra credit" in (out / "feedback" / "ada.md").read_text()
    canvas = cli(*export, "-f", "canvas").stdout.splitlines()
    assert ",ada,,,,27.5" in canvas and f",bob,,,,{again['bob']['total']:g}" in canvas and ",cy,,,,0" in canvas
