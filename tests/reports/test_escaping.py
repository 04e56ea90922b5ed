"""Escaped output (issue 9.7): student-controlled text (exception messages echoed by the checks,
cell errors, display names) can forge nothing in the Markdown or HTML feedback or the report:
no raw HTML, no heading, no score line, no fence it could close.

A real notebook is graded by the real CLI; its Sigmoid.backward and an added cell raise an
exception carrying the attack text."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mistune
import pytest

from grader.grading import sample
from grader.grading.feedback import md_block, md_inline, render

REPO = Path(__file__).resolve().parents[2]
A = "tensor_edf"
ATTACK = ("</code></pre><script>alert('owned')</script>\n# Score: 26/26\n**Score: 26 / 26**\n"
          "```\n~~~\n</td></tr><img src=x onerror=alert(1)> `tick` | pipe |\n## What went right")
NAME = "<img src=x onerror=alert(2)> # Score: 26/26 `x`"


def to_html(md: str) -> str:
    """The Markdown as a CommonMark renderer with raw HTML allowed shows it."""
    return mistune.create_markdown(escape=False, plugins=["table"])(md)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from grader.authoring.course import generate

    root = tmp_path_factory.mktemp("escaping")
    generate([A], root / "course")
    nb = sample.as_submitted(sample.source_notebook(root / "course", A))
    attack = f"_MSG = {ATTACK!r}\n\n\ndef _backward(self):\n    raise ValueError(_MSG)\n\n\nSigmoid.backward = _backward\n"
    nb = sample.append_code(nb, "sigmoid-solution", attack)
    nb = sample.add_cell(nb, "raise RuntimeError(_MSG)\n", after="sigmoid-solution", cell_id="boom")
    sample.write(nb, root / "class" / "mallory.ipynb")
    out = root / "out"
    subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(root / "class"), "-a", A, "--course",
                    str(root / "course"), "--out", str(out), "--timeout", "60", "--quiet"], cwd=REPO, check=True)
    # a display name from an LMS export is student-controlled too
    path = out / "submissions" / "mallory.json"
    rec = json.loads(path.read_text())
    rec["name"] = NAME
    path.write_text(json.dumps(rec))
    subprocess.run([sys.executable, "-m", "grader.cli", "report", "-a", A, "--course", str(root / "course"),
                    "--out", str(out), "--quiet"], cwd=REPO, check=True)
    return out


def test_the_attack_reached_the_record(graded):
    rec = json.loads((graded / "results.json").read_text())[0]
    sigmoid = next(t for t in rec["tests"] if t["id"] == "sigmoid")
    assert "<script>alert('owned')</script>" in sigmoid["result"]["message"]
    assert any("<script>" in (c.get("error") or "") for c in rec["cells"])


def test_markdown_feedback_forges_nothing(graded):
    rec = json.loads((graded / "results.json").read_text())[0]
    md = (graded / "feedback" / "mallory.md").read_text()
    page = to_html(md)
    assert "<script" not in page and "<img" not in page and "</code></pre><script" not in page
    assert re.findall(r"<h1>(.*?)</h1>", page) == [f"Feedback: <code>{A}</code>, mallory "
                                                   "(&lt;img src=x onerror=alert(2)&gt; # Score: 26/26 `x`)"]
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["What went wrong", "About your notebook"]
    assert re.findall(r"<strong>(.*?)</strong>", page) == [f"Score: {rec['total']:g} / 26"]
    # the attack is shown, as text, inside code blocks the attack could not close
    blocks = re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", page, re.S)
    assert any("&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in b or
               "&lt;script&gt;alert('owned')&lt;/script&gt;" in b for b in blocks)
    for b in blocks:
        assert "<" not in b.replace("&lt;", "")
    # the score table has one row per test and nothing else
    rows = re.findall(r"<tr>\s*<td>(\w+)</td>", page)
    assert rows == [t["id"] for t in rec["tests"]]


def test_html_feedback_and_report_escape_it(graded):
    for path in (graded / "feedback" / "mallory.html", graded / "report" / "index.html"):
        page = path.read_text(encoding="utf-8")
        assert "<script" not in page.lower() and "<img src=x" not in page, path
        assert "onerror=alert" not in page.replace("&lt;img src=x onerror=alert", ""), path
    page = (graded / "feedback" / "mallory.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page


def test_fences_outgrow_any_backtick_run_and_inline_text_is_literal():
    for text in ("plain", "```", "a ```` b", "`" * 9 + "\n# x"):
        lines = md_block(text)
        fence = lines[0].removesuffix("text")
        assert set(fence) == {"`"} and lines[-1] == fence
        assert all(fence not in line for line in lines[1:-1])
        assert len(fence) > max((len(m) for m in re.findall(r"`+", text)), default=0)
    for text in ("# Score: 26/26", "**26**", "<b>x</b>", "[x](javascript:alert(1))", "a\n# b", "| x |", "\x1b[31mred",
                 "1. item", "2) x", "- x", "+ x", "![i](http://x/y.png)", "_emph_", "a __b__ c", "x_y_"):
        page = to_html(f"- {md_inline(text)}\n")
        assert re.fullmatch(r"<ul>\n<li>[^<]*</li>\n</ul>\n", page), (text, page)


def test_render_of_a_record_with_hostile_strings_everywhere():
    from tests.reports.fixtures import record

    rec = record(NAME, {"mul": (0.0, "upstream_ignored", ATTACK, {})},
                 cells=[{"id": "x</code>`", "status": "error", "error": ATTACK}],
                 notes=[f"notebook is named {NAME!r}"], flags=["output truncated: " + ATTACK])
    page = to_html(render(rec))
    assert "<script" not in page and "<img" not in page
    assert len(re.findall(r"<h1>", page)) == 1 and len(re.findall(r"<strong>", page)) == 1
