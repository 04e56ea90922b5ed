"""The per-student feedback page: what a student sees, and what they must never see."""
import re

from grader.reports.diagnoses import describe
from grader.reports.feedback import feedback_html, write_feedback_html
from grader.reports.graph_svg import graph_svg, layout

from .fixtures import SCRIPT, SUITE, record


def failing(record_, tid):
    return next(t for t in record_["tests"] if t["id"] == tid)


def test_every_page_is_self_contained(records):
    for r in records:
        html = feedback_html(r)
        assert "<script" not in html.lower()
        assert not re.search(r"<link|@import|<iframe|<img", html, re.I)
        urls = set(re.findall(r"https?://[^\s\"')]+", html))
        assert urls <= {"http://www.w3.org/2000/svg"}, urls


def test_student_controlled_strings_are_escaped(by_student):
    html = feedback_html(by_student["frank"])  # error message and cell error carry <script>
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in html
    html = feedback_html(by_student[f"o'brien {SCRIPT}"])  # and the student's name
    assert "<script" not in html and "o&#x27;brien &lt;script&gt;" in html


def test_score_table_has_every_test_with_points(by_student):
    r = by_student["carol"]
    html = feedback_html(r)
    table = html[html.index('<table class="scores">'):html.index("</table>")]
    assert table.count('<tr class="test ') == len(SUITE)
    for tid, pts, _ in SUITE:
        assert f">{tid}<" in table
    assert "row-failed" in table and "row-passed" in table
    assert f"{r['total']:g} / 26" in table


def test_a_failure_shows_message_cause_hint_and_expected_vs_got():
    diag = "sign_error"
    r = record("x", {"log": (0.0, diag, "Log.backward: grad of operand 0 has the wrong sign.",
                             {"component": "Log", "operand": 0, "case": 1,
                              "expected": [0.5, 1.0, 2.0], "got": [-0.5, -1.0, -2.0]})})
    html = feedback_html(r)
    words, hint = describe(diag)
    section = html[html.index('id="t-log"'):]
    assert "Log.backward: grad of operand 0 has the wrong sign." in section
    assert "Likely cause:" in section and hint.split("`")[0][:30] in section
    assert section.count('class="diff"') + section.count("class=diff") == 6  # every element differs
    assert "failing case" in section and "<code>2</code>" in section  # 0-based in details, 1-based shown
    assert "max absolute error 4" in section and "worst at index (2,)" in section


def test_large_arrays_are_summarised_not_dumped():
    big = [float(i) for i in range(500)]
    got = big[:]
    got[123] += 7.5
    r = record("x", {"exp": (0.0, "wrong_gradient", "Exp.backward: wrong.", {"expected": big, "got": got})})
    html = feedback_html(r)
    assert "array of shape (500,)" in html and "<td>499</td>" not in html
    assert "max absolute error 7.5" in html and "worst at index (123,)" in html


def test_hidden_test_internals_are_never_shown():
    details = {"component": "Add", "seed": 987654321, "seeds": [7211, 9043], "spec": {"values": "SECRET-SPEC"},
               "source": "def hidden_test(): SECRET_SOURCE", "expected": 1.0, "got": 2.0}
    html = feedback_html(record("x", {"add": (0.0, "wrong_gradient", "Add.backward: wrong.", details)}))
    for secret in ("987654321", "7211", "SECRET-SPEC", "SECRET_SOURCE"):
        assert secret not in html


def test_loop_invariant_failure_draws_the_red_circuit(by_student):
    r = by_student["carol"]
    t = failing(r, "backward_mlp2")
    g = t["result"]["details"]["graph"]
    html = feedback_html(r)
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert f'class="node broken" data-name="{g["broken"]}"' in svg or \
           re.search(rf'class="node [^"]*broken[^"]*" data-name="{g["broken"]}"', svg)
    for name in g["processed"]:
        assert re.search(rf'class="node processed[^"]*" data-name="{name}"', svg)
    assert re.search(rf'class="node[^"]*bad-node[^"]*" data-name="{g["bad_node"]}"', svg)
    assert "bad-marker" in svg and 'class="edge processed"' in svg
    assert 'class="legend"' in html and "the red circuit" in html
    for n in g["nodes"]:
        assert f">{n['kind']}<" in svg


def test_layout_columns_are_topological_depth():
    # the worked example: u = x + 1, y = x * u, loss = Sum(y)
    g = {"nodes": [{"name": "x", "kind": "Input", "args": []}, {"name": "one", "kind": "Parameter", "args": []},
                   {"name": "u", "kind": "Add", "args": ["x", "one"]}, {"name": "y", "kind": "Mul", "args": ["x", "u"]},
                   {"name": "loss", "kind": "Sum", "args": ["y"]}],
         "loss": "loss", "processed": ["loss", "y"], "broken": "u", "bad_node": "x"}
    _, place, columns = layout(g)
    col = {n: c for n, (c, _) in place.items()}
    assert col["x"] == 0 and col["one"] == 0 and col["u"] == 1 and col["y"] == 2 and col["loss"] == 3
    for n in g["nodes"]:
        for a in n["args"]:
            assert col[a] < col[n["name"]]
    svg = graph_svg(g, uid="t")
    assert svg.count('class="node') == 5 and 'id="t-red"' in svg


def test_graph_names_are_escaped():
    g = {"nodes": [{"name": "<b>x</b>", "kind": "Input", "args": []},
                   {"name": "y", "kind": "<img src=x onerror=alert(1)>", "args": ["<b>x</b>"]}],
         "loss": "y", "processed": [], "broken": "y", "bad_node": "<b>x</b>"}
    svg = graph_svg(g)
    assert "<b>" not in svg and "<img" not in svg and "&lt;img src=x" in svg


def test_runner_outcomes_and_flags(by_student):
    html = feedback_html(by_student["kim"])
    assert "timeout:" in html and "did not finish" in html
    html = feedback_html(by_student["mallory"])
    assert "flagged for review by a TA" in html
    assert "tried to read" not in html and "imports from os" not in html  # for the TA's report only
    assert "not valid after cell 12" in html  # the record's error explains the status
    assert "output truncated" in html and "neutralised" in html


def test_all_passed(by_student):
    html = feedback_html(by_student["alice"])
    assert "Every test passed" in html and 'class="card failure' not in html and "<svg" not in html


def test_write_feedback_html_writes_a_readable_file(tmp_path, by_student):
    path = write_feedback_html(by_student["dave"], tmp_path / "feedback" / "dave.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<title>Feedback: tensor_edf — dave</title>" in text
    assert (path.stat().st_mode & 0o644) == 0o644
    assert not list(path.parent.glob(".*.tmp"))
