"""Per-student feedback as one self-contained HTML page.

What a student can act on: a score per test; for every test not passed, the check's
message, the diagnosis in plain words with a hint, where it happened, expected vs got,
and for loop-invariant failures the computation graph with the red circuit drawn.
Only whitelisted ``details`` are shown: never the hidden test's source, seeds or specs.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from grader.files import write_atomic
from grader.grading.late import describe as describe_late

from .diagnoses import describe
from .graph_svg import graph_svg, legend_html
from .html import badge, code_spans, esc, page
from .records import (finalise, flag_text, fmt_percent, fmt_points, load_records, passed_note, safe_name, score_parts,
                      student_visible, test_state)

SMALL = 48          # arrays up to this many elements are shown in full
TOL = 1e-6          # elements whose difference exceeds this are highlighted

STATUS_TEXT = {
    "error": "The grader could not run your notebook to the end; the tests below are those it could run.",
    "timeout": "Your notebook did not finish within the grader's time limit.",
    "crashed": "The process running your notebook crashed.",
}

WHERE = [("component", "component"), ("position", "position in components"),
         ("step", "reverse step"), ("node", "node"), ("operand", "operand"), ("case", "failing case")]


def _array(value):
    """A numeric ndarray for a list/number, else None."""
    if isinstance(value, (dict, str)) or value is None:
        return None
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return a


def _num(x: float) -> str:
    return f"{x:.6g}"


def render_value(value, other=None) -> str:
    """Expected or got: small arrays in full (cells differing from ``other`` highlighted),
    large ones by shape, summaries (dicts) as key/value lines."""
    if value is None:
        return '<span class="muted">—</span>'
    if isinstance(value, dict):
        rows = "".join(f"<dt>{esc(k)}</dt><dd class=\"mono\">{esc(v, 200)}</dd>" for k, v in value.items())
        return f'<dl class="where">{rows}</dl>'
    a = _array(value)
    if a is None:
        return f"<code>{esc(value, 400)}</code>"
    b = _array(other)
    diff = None
    if b is not None and b.shape == a.shape:
        with np.errstate(invalid="ignore"):
            diff = ~np.isclose(a, b, rtol=TOL, atol=TOL, equal_nan=True)
    if a.ndim == 0:
        cls = ' class="diff"' if diff is not None and diff else ""
        return f'<table class="arr"><tr><td{cls}>{_num(a.item())}</td></tr></table>'
    if a.size > SMALL or a.ndim > 2:
        return f'<span class="muted">array of shape {esc(tuple(a.shape))}</span>'
    m = a.reshape(1, -1) if a.ndim == 1 else a
    d = None if diff is None else diff.reshape(m.shape)
    rows = []
    for i, row in enumerate(m):
        cells = "".join(f'<td{" class=diff" if d is not None and d[i, j] else ""}>{_num(x)}</td>'
                        for j, x in enumerate(row))
        rows.append(f"<tr>{cells}</tr>")
    return (f'<table class="arr" title="shape {esc(tuple(a.shape))}">{"".join(rows)}</table>'
            f'<div class="muted" style="font-size:12px">shape {esc(tuple(a.shape))}</div>')


def _fmt(x) -> str:
    try:
        return _num(float(x))
    except (TypeError, ValueError):
        return str(x)


def _error_line(details: dict, expected, got) -> str:
    parts = []
    if details.get("max_abs_err") is not None:
        parts.append(f"max absolute error {esc(_fmt(details['max_abs_err']))}")
    if details.get("max_rel_err") is not None:
        parts.append(f"max relative error {esc(_fmt(details['max_rel_err']))}")
    if details.get("expected_at_worst") is not None and details.get("got_at_worst") is not None:
        parts.append(f"there expected {esc(_fmt(details['expected_at_worst']))}, "
                     f"got {esc(_fmt(details['got_at_worst']))}")
    if details.get("worst_index") is not None:
        w = details["worst_index"]
        parts.append(f"worst at index {esc(tuple(w) if isinstance(w, list) else w)}")
    if not parts:  # compute it when both sides are arrays of one shape
        a, b = _array(expected), _array(got)
        if a is not None and b is not None and a.shape == b.shape and a.size:
            err = np.abs(a - b)
            if np.isfinite(err).any():
                worst = np.unravel_index(int(np.nanargmax(err)), err.shape)
                parts.append(f"max absolute error {_num(float(np.nanmax(err)))}")
                if a.ndim:
                    parts.append(f"worst at index {esc(tuple(int(i) for i in worst))}")
    return f'<p class="muted">{"; ".join(parts)}</p>' if parts else ""


def _failure(test: dict, index: int) -> str:
    result = test.get("result") or {}
    details = result.get("details") or {}
    state = test_state(test)
    tid = str(test.get("id", "?"))
    words, hint = describe(result.get("diagnosis"))
    if hint and hint in str(result.get("message") or ""):
        hint = ""  # the check already appended it to the message
    out = [f'<section class="card failure{" partial-card" if state == "partial" else ""}" id="t-{esc(tid)}">',
           f"<h2>{esc(tid)} {badge(state)} <span class=\"muted\" style=\"font-weight:400\">"
           f"{fmt_points(test.get('points'))} / {fmt_points(test.get('max_points'))} points</span></h2>"]
    if result.get("message"):
        out.append(f'<div class="message"><pre>{esc(result["message"])}</pre></div>')
    if words:
        out.append(f'<div class="cause"><b>Likely cause:</b> {code_spans(esc(words))}'
                   + (f'<p class="hint"><b>Hint:</b> {code_spans(esc(hint))}</p>' if hint else "") + "</div>")
    where = [(label, details[key]) for key, label in WHERE if details.get(key) is not None]
    if isinstance(details.get("case"), int):  # 0-based in details, 1-based in messages
        where = [(k, v + 1 if k == "failing case" else v) for k, v in where]
    if isinstance(details.get("cases"), int) and isinstance(details.get("cases_passed"), int):
        where.append(("cases passed", f"{details['cases_passed']} of {details['cases']}"))
    if where:
        out.append('<dl class="where">' + "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(v, 200)}</code></dd>"
                                                   for k, v in where) + "</dl>")
    expected, got = details.get("expected"), details.get("got")
    if expected is not None or got is not None:
        out.append('<h3>Expected vs got</h3><div class="cmp">'
                   f"<div><div class=\"muted\">expected</div>{render_value(expected, got)}</div>"
                   f"<div><div class=\"muted\">got</div>{render_value(got, expected)}</div></div>"
                   + _error_line(details, expected, got))
    elif any(details.get(k) is not None for k in ("max_abs_err", "max_rel_err", "worst_index")):
        out.append(_error_line(details, None, None))
    graph = details.get("graph")
    if isinstance(graph, dict) and graph.get("nodes"):
        svg = graph_svg(graph, title=f"computation graph of test {tid}", uid=f"g{index}")
        step = f" at reverse step {esc(details['step'])}" if details.get("step") is not None else ""
        caption = ["The components in red had run their backward()" + step + " when the check stopped."]
        if graph.get("broken") is not None:
            caption.append(f"The orange dashed component, <code>{esc(graph['broken'])}</code>, ran its "
                           "backward() at this step and broke the loop invariant: after it, not every "
                           "grad equalled the derivative of the loss through the red part.")
        if graph.get("bad_node") is not None:
            caption.append(f"The grad of <code>{esc(graph['bad_node'])}</code> (marked !) was the wrong one.")
        out.append(f'<figure class="graph-fig">{svg}{legend_html()}<figcaption>{" ".join(caption)}</figcaption></figure>')
    out.append("</section>")
    return "".join(out)


def unreadable(record: dict) -> bool:
    """The notebook could not be read at all: every test is ``not_graded`` for one reason,
    which the page says once (not once per test)."""
    tests = record.get("tests") or []
    return record.get("status") == "error" and bool(tests) and all(
        (t.get("result") or {}).get("diagnosis") == "not_graded" for t in tests)


def feedback_html(record: dict) -> str:
    """The feedback page of one submission record, as a string."""
    record = finalise(record)
    student, assignment = record.get("student", "?"), record.get("assignment", "?")
    tests = record.get("tests") or []
    total, mx = record["total"], record["max"]
    frac = max(0.0, min(1.0, float(total) / float(mx))) if mx else 0.0
    body = [f'<header class="card"><div><h1>{esc(assignment)}</h1>'
            f'<div class="muted">Feedback for <b class="student">{esc(student)}</b>'
            + (f' <span class="name">{esc(record["name"], 200)}</span>' if record.get("name") else "")
            + '</div></div>'
            f'<div class="total"><span class="big">{fmt_points(total)}</span> / {fmt_points(mx)} points '
            f'<span class="muted">({fmt_percent(record["percent"])})</span>'
            + (f'<div class="muted parts">{esc(score_parts(record))}</div>' if score_parts(record) else "")
            + f'<div class="bar"><span style="width:{100 * frac:.1f}%"></span></div></div></header>']

    status = record.get("status", "graded")
    if status != "graded":
        body.append(f'<section class="card banner"><b>{esc(status)}:</b> '
                    + (esc("Your notebook could not be read, so none of the tests could run. What is wrong:")
                       if unreadable(record) else
                       esc(STATUS_TEXT.get(status, 'The grader reported a problem with this submission.')))
                    + (f"<pre>{esc(record['error'], 1500)}</pre>" if record.get("error") else "") + "</section>")
    notes = list(record.get("notes") or [])
    flags = record.get("flags") or []
    notes += [flag_text(f) for f in flags if student_visible(f)]
    if any(not student_visible(f) for f in flags):  # what a TA reviews is the TA's to tell
        notes.append("This submission was flagged for review by a TA.")
    if any("manual_points" in t for t in tests):
        notes.append("A TA adjusted the points of some tests (marked “adjusted by a TA” below).")
    if record["extra_credit"]:
        notes.append(f"A TA gave {fmt_points(record['extra_credit'])} point(s) of extra credit (marked below).")
    if describe_late(record):
        notes.append(describe_late(record))
    if notes:
        body.append('<section class="card banner warn"><b>Notes from the grader</b><ul>'
                    + "".join(f"<li>{esc(n, 500)}</li>" for n in notes) + "</ul></section>")

    rows = []
    for t in tests:
        r = t.get("result") or {}
        state = test_state(t)
        tid = str(t.get("id", "?"))
        name = f'<a href="#t-{esc(tid)}">{esc(tid)}</a>' if state != "passed" else esc(tid)
        words = describe(r.get("diagnosis"))[0] if state != "passed" and not unreadable(record) else ""
        words = words or passed_note(t)[:600]  # a failure charged to another test's unit, said here
        adjusted = ' <span class="muted">adjusted by a TA</span>' if "manual_points" in t else ""
        if t.get("extra_credit"):
            adjusted += f' <span class="muted">+ {fmt_points(t["extra_credit"])} extra credit</span>'
        rows.append(f"<tr class=\"test row-{state}\" data-test=\"{esc(tid)}\"><td>{name}</td><td>{badge(state)}</td>"
                    f"<td class=\"num\">{fmt_points(t.get('points'))} / {fmt_points(t.get('max_points'))}{adjusted}</td>"
                    f"<td>{code_spans(esc(words))}</td></tr>")
    body.append('<section class="card" id="scores"><h2>Scores</h2><table class="scores">'
                '<thead><tr><th>test</th><th>result</th><th class="num">points</th><th>likely cause</th>'
                "</tr></thead><tbody>" + "".join(rows)
                + "".join(f'<tr class="{cls}"><td>{label}</td><td></td><td class="num">{sign}{fmt_points(v)}</td>'
                          "<td></td></tr>" for cls, label, sign, v in
                          (("extra-row", "extra credit", "+ ", record["extra_credit"]),
                           ("late-row", "late penalty", "- ", record["late_penalty"])) if v)
                + f'<tr class="total-row"><td><b>total</b></td><td></td><td class="num"><b>{fmt_points(total)} / '
                f"{fmt_points(mx)}</b></td><td></td></tr></tbody></table></section>")

    cells = [c for c in record.get("cells") or [] if c.get("status", "ok") != "ok"]
    if cells:
        body.append('<section class="card"><h2>Cells that did not run cleanly</h2><table><thead><tr>'
                    "<th>cell</th><th>status</th><th>error</th></tr></thead><tbody>"
                    + "".join(f"<tr><td><code>{esc(c.get('id'))}</code></td><td>{esc(c.get('status'))}</td>"
                              f"<td><pre>{esc(c.get('error') or '', 1500)}</pre></td></tr>" for c in cells)
                    + "</tbody></table></section>")

    if not unreadable(record):
        body += [_failure(t, i) for i, t in enumerate(tests) if test_state(t) != "passed"]
    if tests and all(test_state(t) == "passed" for t in tests):
        body.append('<section class="card"><b>Every test passed.</b> Well done.</section>')
    body.append(f"<footer>Generated by <code>backprop report</code> on {datetime.now():%Y-%m-%d %H:%M}. "
                "Hidden tests use inputs you have not seen; their code and inputs are not shown. "
                "The visible tests in your notebook check the same things on smaller cases.</footer>")
    return page(f"Feedback: {assignment} — {student}", "".join(body))


def write_feedback_html(record: dict, path) -> Path:
    """Write the feedback page of one submission record to ``path``."""
    path = Path(path)
    write_atomic(path, feedback_html(record))
    return path


def feedback_path(out_dir, student: str) -> Path:
    """Where a student's page goes: ``<out_dir>/feedback/<student>.html``."""
    return Path(out_dir) / "feedback" / f"{safe_name(student)}.html"


def write_all_feedback(grades_dir, out_dir=None, progress=None) -> list[Path]:
    """Feedback pages for every record of a grading output folder.

    ``progress``: optional wrapper ``(iterable, total, label) -> iterable`` (terminal.progress).
    """
    records = load_records(grades_dir)
    out_dir = Path(out_dir or grades_dir)
    it = progress(records, len(records), "feedback") if progress else records
    return [write_feedback_html(r, feedback_path(out_dir, r.get("student", "?"))) for r in it]
