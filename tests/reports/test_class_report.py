"""The class report, the pass matrix and ``backprop report``: read grading output only."""
import csv
import json
import shutil

from grader.cli import main
from grader.reports.class_report import summarise, write_class_report
from grader.reports.records import load_records

from .fixtures import SCRIPT, SUITE, build_records, make_grades, record

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_files(grades):
    report = grades / "report"
    for name in ("score_distribution.png", "pass_rate.png", "misconceptions.png"):
        data = (report / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
    html = (report / "index.html").read_text(encoding="utf-8")
    for src in ("score_distribution.png", "pass_rate.png", "misconceptions.png"):
        assert f'src="{src}"' in html
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "o&#x27;brien &lt;script&gt;" in html


def test_pass_matrix(grades, records):
    with open(grades / "report" / "pass_matrix.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["student", "name", *[t for t, _, _ in SUITE], "extra_credit", "raw", "late_penalty", "total",
                       "max", "percent", "status"]
    assert len(rows) == 1 + len(records)
    by = {r[0]: r for r in rows[1:]}
    assert set(by["alice"][2:2 + len(SUITE)]) == {"1"}
    carol = dict(zip(rows[0], by["carol"]))
    assert carol["backward_mlp2"] == "0" and carol["mul"] == "0" and carol["add"] == "1"
    assert all(c in ("0", "1", "") for r in rows[1:] for c in r[2:2 + len(SUITE)])


def test_csv_guards_against_formulas(tmp_path):
    root = tmp_path / "g"
    (root / "submissions").mkdir(parents=True)
    (root / "submissions" / "x.json").write_text(json.dumps(record("=HYPERLINK(\"http://x\")", {})))
    write_class_report(root)
    text = (root / "report" / "pass_matrix.csv").read_text()
    assert '\n"\'=HYPERLINK' in text


def test_summary_counts_misconceptions_per_component(by_student):
    recs = [by_student[s] for s in ("alice", "carol", "dave", "ivan", "kim")]
    s = summarise(recs)
    assert s["submissions"] == 5 and s["full_marks"] == 1
    mis = {(m["diagnosis"], m["component"]): m["students"] for m in s["misconceptions"]}
    assert "carol" in mis[("bias_not_summed", "Add")]  # the loop failure, blamed on the component
    assert mis[("upstream_ignored", "Mul")] == ["dave", "ivan"]
    assert not any(d in ("timeout", "crashed") for d, _ in mis)  # runner outcomes go to the TA list
    mul = next(t for t in s["tests"] if t["id"] == "mul")
    assert mul["passed"] == 1 and mul["partial"] == 1 and mul["failed"] == 3 and mul["pass_rate"] == 1 / 5
    assert [a["student"] for a in s["attention"]] == ["kim"]


def test_attention_list_names_errors_timeouts_and_hostile_flags(grades):
    html = (grades / "report" / "index.html").read_text(encoding="utf-8")
    att = html[html.index('id="attention"'):]
    att = att[:att.index("</section>")]
    for student, why in [("kim", "timeout"), ("leo", "crashed"), ("mallory", "hostile"), ("niaj", "output_limit")]:
        assert f">{student}</a>" in att and why in att
    assert "tried to read /work/main/reference/operations.py" in att and "imports from os" in att
    assert "not valid after cell 12" in att
    assert ">alice</a>" not in att
    assert 'href="../feedback/kim.html"' in att


def test_links_point_at_written_feedback(grades, records):
    html = (grades / "report" / "index.html").read_text(encoding="utf-8")
    import re
    from urllib.parse import unquote
    for href in set(re.findall(r'href="\.\./feedback/([^"]+)"', html)):
        assert (grades / "feedback" / unquote(href)).is_file(), href
    assert len(list((grades / "feedback").glob("*.html"))) == len(records)


def test_all_passing_class(tmp_path):
    root = tmp_path / "g"
    (root / "submissions").mkdir(parents=True)
    for s in ("a", "b"):
        (root / "submissions" / f"{s}.json").write_text(json.dumps(record(s, {})))
    index = write_class_report(root)
    html = index.read_text()
    assert "No diagnosed failures" in html and "Nothing unusual" in html
    assert (root / "report" / "misconceptions.png").read_bytes().startswith(PNG)


def test_results_json_fallback_and_torn_files(tmp_path):
    root = make_grades(tmp_path / "g", n_random=2)
    n = len(load_records(root))
    (root / "submissions" / "torn.json").write_text('{"student": "to')
    skipped = []
    assert len(load_records(root, skipped)) == n and skipped and "torn.json" in skipped[0]
    shutil.rmtree(root / "submissions")
    assert [r["student"] for r in load_records(root)] == sorted(r["student"] for r in build_records(2))


def test_cli_text_json_quiet(tmp_path, capsys):
    root = make_grades(tmp_path / "course" / "grades" / "tensor_edf", n_random=3)
    assert main(["report", "--assignment", "tensor_edf", "--course", str(tmp_path / "course")]) == 0
    out = capsys.readouterr().out
    assert "needs a TA's look" in out and "class report:" in out and "misconception" in out
    assert (root / "report" / "index.html").is_file() and (root / "feedback" / "alice.html").is_file()

    assert main(["report", "-a", "tensor_edf", "--out", str(root), "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["submissions"] == len(load_records(root)) and data["paths"]["report"].endswith("index.html")
    assert captured.err == ""

    assert main(["report", "-a", "tensor_edf", "--out", str(root), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")

    assert main(["report", "-a", "nope", "--course", str(tmp_path / "course")]) == 2
    assert "no grading output" in capsys.readouterr().err


def test_script_in_names_never_reaches_the_terminal_table_unescaped(tmp_path, capsys):
    # a terminal is not HTML; the name is printed as given, but the page escapes it
    root = make_grades(tmp_path / "g", n_random=0)
    assert main(["report", "-a", "tensor_edf", "--out", str(root)]) == 0
    html = (root / "report" / "index.html").read_text()
    assert SCRIPT not in html


def test_a_student_failing_two_tests_for_one_misconception_counts_once():
    """The same `=`-for-`+=` bug in Mul fails the mul test and a loop graph using Mul."""
    assign = (0.0, "assign_not_accumulate", "Mul.backward: x.grad was overwritten", {"component": "Mul"})
    recs = [record("zoe", {"mul": assign, "backward_mlp2": assign}), record("yan", {"mul": assign})]
    mis = {(m["diagnosis"], m["component"]): m for m in summarise(recs)["misconceptions"]}
    m = mis[("assign_not_accumulate", "Mul")]
    assert m["students"] == ["yan", "zoe"] and m["count"] == 2


def test_a_failure_without_a_component_is_placed_at_the_test_target():
    rec = record("zoe", {"relu": (0.0, "missing", "not defined (renamed or deleted?)", {})})
    mis = {(m["diagnosis"], m["component"]) for m in summarise([rec])["misconceptions"]}
    assert mis == {("missing", "ReLU")}
