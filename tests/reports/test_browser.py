"""The pages in a real browser: headless Chromium renders them, offline.

A probe copy of each page (same folder, so relative images resolve) gets a tiny inline
script that, after ``load``, writes what it measured into the DOM; ``--dump-dom`` reads
it back. A screenshot must not be blank and must show the graph's highlight colours.
Skipped only when Chromium is not installed or cannot launch here.
"""
import json
import re

import numpy as np
import pytest
from PIL import Image

from .chromium import dump_dom, find_chromium, launch_problem, screenshot

BINARY = find_chromium()
PROBLEM = launch_problem(BINARY)
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=f"browser test needs Chromium: {PROBLEM}")

PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images].map(i => ({src: i.getAttribute("src"), w: i.naturalWidth, h: i.naturalHeight,
                                             complete: i.complete}));
  const svgs = [...document.querySelectorAll("svg.graph")].map(s => {
    const b = s.getBoundingClientRect();
    const box = sel => { const e = s.querySelector(sel); if (!e) return null;
                         const r = e.getBoundingClientRect(); return {w: r.width, h: r.height,
                         stroke: getComputedStyle(e).stroke}; };
    return {w: b.width, h: b.height, broken: box("g.broken rect"), processed: box("g.processed rect"),
            bad: box(".bad-marker")};
  });
  const rows = document.querySelectorAll("table.scores tr.test").length;
  const out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify({title: document.title, imgs, svgs, rows,
                                    width: document.documentElement.scrollWidth});
  document.body.appendChild(out);
});
</script>"""


def probe(page):
    """Load a probe copy of ``page`` in Chromium; return what the inline script measured."""
    copy = page.with_name(f"_probe_{page.name}")
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = dump_dom(BINARY, copy.as_uri())
    finally:
        copy.unlink()
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', dom, re.S)
    assert m, "the page did not finish loading (no probe marker in the DOM)"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&amp;", "&")), dom


def colour_share(png, rgb, tol=24):
    px = np.asarray(Image.open(png).convert("RGB"), dtype=int)
    return float(np.all(np.abs(px - np.array(rgb)) <= tol, axis=-1).mean())


def not_blank(png):
    grey = np.asarray(Image.open(png).convert("L"))
    counts = np.bincount(grey.ravel(), minlength=256)
    return int(grey.max()) - int(grey.min()) > 100 and counts.max() / counts.sum() < 0.95


def test_feedback_page_renders(grades, tmp_path):
    page = grades / "feedback" / "carol.html"
    data, dom = probe(page)
    assert data["title"] == "Feedback: tensor_edf — carol"
    assert data["rows"] == 14
    assert "<script>alert" not in dom
    (svg,) = data["svgs"]
    assert svg["w"] > 300 and svg["h"] > 80
    assert svg["broken"]["w"] > 20 and svg["processed"]["w"] > 20 and svg["bad"]["w"] > 5
    assert svg["broken"]["stroke"] != svg["processed"]["stroke"]  # highlighted differently
    assert data["width"] <= 1300  # nothing overflows the page sideways
    shot = screenshot(BINARY, page.as_uri(), tmp_path / "feedback.png", 1200, 2400)
    assert not_blank(shot)
    assert colour_share(shot, (0xe6, 0x51, 0x00), 30) > 0.0002   # the broken component (orange)
    assert colour_share(shot, (0xc6, 0x28, 0x28), 30) > 0.0002   # the red circuit


def test_feedback_with_hostile_strings_stays_inert(grades):
    page = next((grades / "feedback").glob("o_brien*.html"))
    data, dom = probe(page)
    assert "alert(" in data["title"]  # shown as text in the title, never run
    assert dom.count("<script>") == 1  # only the probe's own script


def test_class_report_renders_with_images(grades, tmp_path):
    page = grades / "report" / "index.html"
    data, dom = probe(page)
    assert data["title"] == "tensor_edf: class report"
    srcs = {i["src"]: i for i in data["imgs"]}
    assert set(srcs) == {"score_distribution.png", "pass_rate.png", "misconceptions.png"}
    for src, img in srcs.items():
        assert img["complete"] and img["w"] > 200 and img["h"] > 100, src
    assert 'id="attention"' in dom and ">mallory</a>" in dom
    shot = screenshot(BINARY, page.as_uri(), tmp_path / "report.png", 1200, 1600)
    assert not_blank(shot)
    assert colour_share(shot, (0x43, 0xa0, 0x47), 20) > 0.001  # the pass-rate bars drew
