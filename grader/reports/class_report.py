"""The class report: one HTML page an instructor reads at a glance, PNG figures, a CSV.

Read from a grading output folder (``course/grades/<A>/``) and written to ``report/``
beside it: ``index.html``, ``score_distribution.png``, ``pass_rate.png``,
``misconceptions.png`` and ``pass_matrix.csv`` (one row per student, one column per test:
1 passed, 0 not passed, empty when the test has no result).
"""
from __future__ import annotations

import csv
import io
import os
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from grader.files import write_atomic
from grader.grading.late import duration

from .diagnoses import RUNNER_CODES, describe
from .html import badge, code_spans, esc, page
from .records import (csv_cell, finalise, flag_text, fmt_percent, fmt_points, load_records, load_unmatched,
                      max_points, needs_attention, percent, points, safe_name, score_parts, test_order)

GREEN, AMBER, RED, GREY = "#43a047", "#fb8c00", "#e53935", "#b0bec5"


def component_of(test: dict) -> str:
    """The component a failure is attributed to (the misconception's place)."""
    details = (test.get("result") or {}).get("details") or {}
    if details.get("component"):
        return str(details["component"])
    if details.get("graph"):
        return "Backward"
    m = re.match(r"([A-Za-z_]\w*)\.(forward|backward)\b", str((test.get("result") or {}).get("message") or ""))
    return m.group(1) if m else str(test.get("target") or test.get("id"))


def summarise(records: list[dict], unmatched: list[dict] | None = None) -> dict:
    """Everything the report shows, as JSON-able data (also ``backprop report --json`` and
    the class part of ``summary.json``). Records are ``finalise``d first: the same points,
    states and reasons as every other output. ``unmatched``: notebooks of an LMS export that
    belong to no student (``{"file", "reason"}``, from discovery), listed for the TA."""
    records = [finalise(r) for r in records]
    tests = test_order(records)
    maxp = max_points(records)
    students = []
    per_test = {t: Counter() for t in tests}
    points_of = defaultdict(list)
    diag = defaultdict(set)            # (diagnosis, component) -> students (one may fail several tests)
    top = {t: Counter() for t in tests}
    codes_of = {t: Counter() for t in tests}
    manual = 0
    for r in records:
        by_id = {str(t.get("id")): t for t in r.get("tests") or []}
        failed = []
        for tid in tests:
            t = by_id.get(tid)
            if t is None:
                per_test[tid]["missing"] += 1
                continue
            st = t["state"]
            per_test[tid][st] += 1
            points_of[tid].append(t["points"])
            manual += "manual_points" in t
            code = (t.get("result") or {}).get("diagnosis")
            if st != "passed":
                failed.append(tid)
                codes_of[tid][code or "failed"] += 1
                if code and code not in RUNNER_CODES:
                    top[tid][code] += 1
                    diag[(code, component_of(t))].add(str(r.get("student")))
        students.append({"student": str(r.get("student")), "name": r.get("name"), "total": r["total"],
                         "raw": r["raw"], "extra_credit": r["extra_credit"], "late_penalty": r["late_penalty"],
                         "seconds_late": float(r.get("seconds_late") or 0.0),
                         "max": r["max"], "percent": r["percent"], "status": r.get("status", "graded"),
                         "failed": failed, "attention": needs_attention(r), "reasons": r["attention"],
                         "error": r.get("error"), "flags": [flag_text(f) for f in r.get("flags") or []],
                         "notes": list(r.get("notes") or []),
                         "cell_errors": [c for c in r.get("cells") or [] if c.get("status", "ok") != "ok"],
                         "seconds": r.get("seconds"), "isolation": r.get("isolation"),
                         "pass": {tid: (None if tid not in by_id else int(by_id[tid]["state"] == "passed"))
                                  for tid in tests}})
    totals = [s["total"] for s in students]
    n = len(records)
    mx = Counter(s["max"] for s in students).most_common(1)[0][0] if students else points(sum(maxp.values()))
    mean = points(statistics.fmean(totals)) if totals else None
    median = points(statistics.median(totals)) if totals else None
    return {
        "assignment": next((str(r.get("assignment")) for r in records if r.get("assignment")), "?"),
        "submissions": n, "max_points": mx,
        "mean": mean, "median": median,
        "mean_percent": percent(mean, mx) if totals else 0.0,
        "median_percent": percent(median, mx) if totals else 0.0,
        "full_marks": sum(1 for s in students if s["max"] and s["total"] >= s["max"]),
        "manual_grades": manual,
        "extra_credit": sum(1 for s in students if s["extra_credit"]),
        "late": sum(1 for s in students if s["seconds_late"] > 0),
        "late_penalised": sum(1 for s in students if s["late_penalty"]),
        "status": dict(Counter(s["status"] for s in students)),
        "not_isolated": sorted(s["student"] for s in students if s["isolation"] not in (None, "bwrap")),
        "tests": [{"id": t, "max_points": maxp.get(t), "passed": per_test[t]["passed"],
                   "partial": per_test[t]["partial"], "failed": per_test[t]["failed"],
                   "missing": per_test[t]["missing"],
                   "pass_rate": per_test[t]["passed"] / n if n else 0.0,
                   "mean_points": points(statistics.fmean(points_of[t])) if points_of[t] else 0.0,
                   "diagnoses": dict(sorted(codes_of[t].items(), key=lambda kv: (-kv[1], kv[0]))),
                   "top_diagnosis": top[t].most_common(1)[0][0] if top[t] else None} for t in tests],
        "misconceptions": sorted(({"diagnosis": d, "component": c, "count": len(v), "students": sorted(v)}
                                  for (d, c), v in diag.items()), key=lambda m: (-m["count"], m["diagnosis"], m["component"])),
        "attention": [{k: s[k] for k in ("student", "name", "status", "attention", "reasons", "error", "flags",
                                         "notes", "cell_errors", "seconds")}
                      for s in students if s["reasons"]],
        "unmatched": [dict(u) for u in unmatched or []],
        "students": students,
    }


def late_line(summary: dict) -> str | None:
    """The terminal's line on late penalties and extra credit (None when the class has neither)."""
    parts = []
    if summary.get("late"):
        parts.append(f"late: {summary['late']} submission(s), {summary.get('late_penalised', 0)} with a penalty")
    if summary.get("extra_credit"):
        parts.append(f"extra credit: {summary['extra_credit']} student(s)")
    if not parts:
        return None
    return "; ".join(parts) + " (scores above are after both; gradebook.csv: raw, extra_credit, late_penalty, total)"


# ---------------------------------------------------------------------------- figures

def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110, facecolor="white")


def _new(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained")
    return fig


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9)


def fig_score_distribution(summary: dict, path: Path) -> None:
    pct = [s["percent"] for s in summary["students"]]
    fig = _new(6.4, 3.4)
    ax = fig.add_subplot()
    bins = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.0001]
    ax.hist(pct, bins=bins, color="#5c8dd6", edgecolor="white")
    if pct:
        ax.axvline(summary["mean_percent"], color="#263238", lw=1.5, ls="--",
                   label=f"mean {fmt_points(summary['mean'])} pts ({fmt_percent(summary['mean_percent'])})")
        ax.axvline(summary["median_percent"], color=AMBER, lw=1.5, label=f"median {fmt_points(summary['median'])} pts ({fmt_percent(summary['median_percent'])})")
        ax.legend(frameon=False, fontsize=9, loc="upper left")
    ax.set_xlim(0, 100)
    ax.set_xlabel("score (% of points)", fontsize=10)
    ax.set_ylabel("students", fontsize=10)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Score distribution ({summary['submissions']} submissions)", fontsize=11, loc="left")
    _style(ax)
    _save(fig, path)


def fig_pass_rate(summary: dict, path: Path) -> None:
    tests = summary["tests"]
    n = max(summary["submissions"], 1)
    fig = _new(6.4, max(2.2, 0.6 + 0.3 * len(tests)))
    ax = fig.add_subplot()
    ids = [t["id"] for t in tests][::-1]
    left = [0.0] * len(ids)
    for key, color, label in (("passed", GREEN, "passed"), ("partial", AMBER, "partial credit"),
                              ("failed", RED, "failed"), ("missing", GREY, "no result")):
        vals = [100 * t[key] / n for t in tests][::-1]
        if any(vals):
            ax.barh(ids, vals, left=left, color=color, label=label, height=0.7)
            left = [a + b for a, b in zip(left, vals)]
    for i, t in enumerate(tests[::-1]):
        ax.text(101, i, f"{100 * t['pass_rate']:.0f}%", va="center", fontsize=8.5, color="#37474f")
    ax.set_xlim(0, 110)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("% of submissions", fontsize=10)
    ax.legend(frameon=False, fontsize=8.5, ncols=4, loc="lower left", bbox_to_anchor=(0, 1.0))
    ax.set_title("Pass rate per test", fontsize=11, loc="left", pad=22)
    _style(ax)
    _save(fig, path)


def fig_misconceptions(summary: dict, path: Path) -> None:
    mis = summary["misconceptions"]
    comps = sorted({m["component"] for m in mis})
    codes = sorted({m["diagnosis"] for m in mis}, key=lambda c: -sum(m["count"] for m in mis if m["diagnosis"] == c))
    fig = _new(max(6.4, 1.6 + 0.62 * len(codes)), max(2.4, 1.4 + 0.36 * len(comps)))
    ax = fig.add_subplot()
    if not mis:
        ax.text(0.5, 0.5, "no diagnosed failures", ha="center", va="center", fontsize=12, color="#607d8b")
        ax.set_axis_off()
    else:
        grid = [[0] * len(codes) for _ in comps]
        for m in mis:
            grid[comps.index(m["component"])][codes.index(m["diagnosis"])] = m["count"]
        top = max(max(row) for row in grid)
        ax.imshow(grid, cmap="Reds", vmin=0, vmax=top * 1.15, aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=9,
                            color="white" if v > 0.6 * top else "#263238")
        ax.set_xticks(range(len(codes)), [c.replace("_", " ") for c in codes], rotation=35, ha="right", fontsize=8.5)
        ax.set_yticks(range(len(comps)), comps, fontsize=9)
        ax.set_xticks([x - 0.5 for x in range(1, len(codes))], minor=True)
        ax.set_yticks([y - 0.5 for y in range(1, len(comps))], minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.tick_params(which="both", length=0)
        for s in ax.spines.values():
            s.set_visible(False)
    ax.set_title("Misconceptions: students per diagnosis and component", fontsize=11, loc="left")
    _save(fig, path)


# ---------------------------------------------------------------------------- page

def _link(student: str, feedback_rel: str) -> str:
    return f'<a href="{esc(feedback_rel)}/{quote(safe_name(student))}.html">{esc(student, 80)}</a>'


def _names(students: list[str], feedback_rel: str, limit: int = 12) -> str:
    shown = ", ".join(_link(s, feedback_rel) for s in students[:limit])
    return shown + (f" and {len(students) - limit} more" if len(students) > limit else "")


def report_html(summary: dict, feedback_rel: str = "../feedback", gradebook_rel: str | None = None) -> str:
    s = summary
    n = s["submissions"]
    body = [f'<header class="card"><div><h1>{esc(s["assignment"])}: class report</h1>'
            f'<div class="muted">{n} submissions · generated {datetime.now():%Y-%m-%d %H:%M}</div></div></header>']
    mx = fmt_points(s["max_points"])
    stats = [(str(n), "submissions"),
             (f"{fmt_points(s['mean'])} / {mx}" if s["mean"] is not None else "—",
              f"mean points ({fmt_percent(s['mean_percent'])})", "mean"),
             (f"{fmt_points(s['median'])} / {mx}" if s["median"] is not None else "—",
              f"median points ({fmt_percent(s['median_percent'])})", "median"),
             (str(s["full_marks"]), "full marks"),
             (str(len(s["attention"]) + len(s.get("unmatched") or [])), "need a TA's look")]
    stats = [x if len(x) == 3 else (*x, x[1].split()[0]) for x in stats]
    body.append('<div class="stats">' + "".join(f'<div class="stat" data-stat="{esc(key)}"><div class="v">{esc(v)}</div>'
                                                 f'<div class="k">{esc(k)}</div></div>' for v, k, key in stats)
                + "</div>")
    if s["not_isolated"]:
        body.append(f'<section class="card banner warn"><b>Isolation:</b> {len(s["not_isolated"])} submission(s) '
                    "were graded without bubblewrap (rlimits only).</section>")
    body.append('<div class="grid2">'
                '<figure class="card"><img src="score_distribution.png" alt="score distribution" id="fig-scores">'
                "</figure>"
                '<figure class="card"><img src="pass_rate.png" alt="pass rate per test" id="fig-pass"></figure></div>')

    rows = "".join(
        f"<tr data-test=\"{esc(t['id'])}\"><td><code>{esc(t['id'])}</code></td>"
        f"<td class=\"num\">{fmt_points(t['max_points'])}</td>"
        f"<td class=\"num\">{t['passed']} ({fmt_percent(100 * t['pass_rate'])})</td><td class=\"num\">{t['partial']}</td>"
        f"<td class=\"num\">{t['failed']}</td><td class=\"num\">{fmt_points(t['mean_points'])}</td>"
        f"<td>{code_spans(esc(describe(t['top_diagnosis'])[0])) if t['top_diagnosis'] else ''}</td></tr>"
        for t in s["tests"])
    tests_section = ('<section class="card" id="tests"><h2>Tests</h2><table><thead><tr><th>test</th>'
                '<th class="num">points</th><th class="num">passed</th><th class="num">partial</th>'
                '<th class="num">failed</th><th class="num">mean points</th><th>most common cause</th></tr></thead>'
                f"<tbody>{rows}</tbody></table><p class=\"muted\">passed: full marks; partial: some points; "
                "failed: no points.</p></section>")

    mis_rows = "".join(
        f"<tr><td><b>{code_spans(esc(describe(m['diagnosis'])[0]))}</b><div class=\"muted\"><code>{esc(m['diagnosis'])}</code>"
        f"</div></td><td><code>{esc(m['component'])}</code></td><td class=\"num\">{m['count']}</td>"
        f"<td class=\"num\">{100 * m['count'] / max(n, 1):.0f}%</td>"
        f"<td>{_names(m['students'], feedback_rel)}</td></tr>" for m in s["misconceptions"])
    body.append('<section class="card" id="misconceptions"><h2>Misconceptions</h2>'
                '<p class="muted">Which misconceptions the class holds: the students with each diagnosis, under '
                "the component the grader blamed (a student counts once, however many tests it failed).</p>"
                '<figure><img src="misconceptions.png" alt="diagnoses per component" id="fig-mis"></figure>'
                + (f'<table><thead><tr><th>diagnosis</th><th>component</th><th class="num">students</th>'
                   f'<th class="num">of class</th><th>who</th></tr></thead><tbody>{mis_rows}</tbody></table>'
                   if mis_rows else "<p>No diagnosed failures.</p>") + "</section>")

    att = []
    for a in s["attention"]:
        detail = [esc(x, 300) for x in a["reasons"]] + [esc(x, 300) for x in a["notes"]]
        detail += [f"cell <code>{esc(c.get('id'))}</code>: {esc(c.get('status'))}"
                   + (f" — {esc(c.get('error'), 200)}" if c.get("error") else "") for c in a["cell_errors"]]
        secs = f"{a['seconds']:.1f} s" if isinstance(a.get("seconds"), (int, float)) else ""
        att.append(f"<tr data-student=\"{esc(a['student'])}\"><td>{_link(a['student'], feedback_rel)}"
                   + (f" <span class=\"muted\">{esc(a['name'], 80)}</span>" if a.get("name") else "")
                   + f"</td><td>{esc(a['status'])}</td>"
                   f"<td>{', '.join(esc(x) for x in a['attention'])}</td>"
                   f"<td><ul style=\"margin:0;padding-left:18px\">{''.join(f'<li>{d}</li>' for d in detail)}</ul></td>"
                   f"<td class=\"num\">{secs}</td></tr>")
    for u in s.get("unmatched") or []:  # a notebook of nobody: not graded, not a student
        att.append(f"<tr data-file=\"{esc(u['file'])}\"><td>file <code>{esc(u['file'], 200)}</code></td>"
                   f"<td>not graded</td><td>no student</td><td>{esc(u['reason'], 300)}</td><td></td></tr>")
    body.append('<section class="card" id="attention"><h2>Needs a TA\'s look: errors, timeouts, flags</h2>'
                + ('<table><thead><tr><th>student</th><th>status</th><th>why</th><th>details</th>'
                   f'<th class="num">time</th></tr></thead><tbody>{"".join(att)}</tbody></table>'
                   if att else "<p>Nothing unusual: every submission ran to the end without flags.</p>")
                + "</section>")

    # the score's parts (tests, extra credit, late penalty) where a student's total is more than its tests
    parts = any(score_parts(x) for x in s["students"])
    st_rows = "".join(
        f"<tr data-student=\"{esc(x['student'])}\"><td>{_link(x['student'], feedback_rel)}"
        + (f" <span class=\"muted\">{esc(x['name'], 80)}</span>" if x.get("name") else "")
        + f"</td><td class=\"num\">{fmt_points(x['total'])} / "
        f"{fmt_points(x['max'])}</td><td class=\"num\">{fmt_percent(x['percent'])}</td>"
        f"<td>{badge('passed') if x['status'] == 'graded' and not x['failed'] else esc(x['status'])}</td>"
        f"<td>{', '.join(esc(t) for t in x['failed'])}</td>"
        + (f"<td class=\"parts\">{esc(score_parts(x) or '')}"
           + (f" <span class=\"muted\">({esc(duration(x['seconds_late']))} late)</span>" if x['seconds_late'] > 0
              else "") + "</td>" if parts else "")
        + "</tr>" for x in s["students"])
    body.append(tests_section)
    body.append('<section class="card" id="students"><h2>Students</h2><table><thead><tr><th>student</th>'
                '<th class="num">points</th><th class="num">score</th><th>status</th><th>tests not passed</th>'
                + ("<th>points = tests + extra credit - late penalty</th>" if parts else "")
                + f"</tr></thead><tbody>{st_rows}</tbody></table></section>")
    links = ['<a href="pass_matrix.csv">pass_matrix.csv</a> (1 passed, 0 not passed, per student and test)']
    if gradebook_rel:
        links.append(f'<a href="{esc(gradebook_rel)}">gradebook.csv</a> (points)')
    body.append(f"<footer>Files: {' · '.join(links)}. Built from the grading output only; "
                "nothing was re-run.</footer>")
    return page(f"{s['assignment']}: class report", "".join(body))


def write_pass_matrix(summary: dict, path: Path) -> None:
    """1 passed (full marks), 0 not, empty without a result; points and percent as gradebook.csv."""
    tests = [t["id"] for t in summary["tests"]]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "name", *tests, "extra_credit", "raw", "late_penalty", "total", "max", "percent", "status"])
    for s in summary["students"]:
        w.writerow([csv_cell(s["student"]), csv_cell(s.get("name") or ""),
                    *["" if s["pass"][t] is None else s["pass"][t] for t in tests],
                    *[fmt_points(s[k]) for k in ("extra_credit", "raw", "late_penalty", "total", "max")],
                    f"{s['percent']:.1f}", s["status"]])
    write_atomic(path, buf.getvalue())


def write_class_report(grades_dir, out_dir=None, records: list[dict] | None = None,
                       unmatched: list[dict] | None = None) -> Path:
    """Write ``<out_dir>/report/`` (default ``out_dir`` = ``grades_dir``); returns index.html's path.
    ``unmatched``: the export's notebooks of nobody (default: from ``summary.json``).

    Links to ``<out_dir>/feedback/<student>.html`` (see ``feedback.write_all_feedback``).
    """
    grades_dir = Path(grades_dir)
    out_dir = Path(out_dir or grades_dir)
    records = load_records(grades_dir) if records is None else records
    summary = summarise(records, load_unmatched(grades_dir) if unmatched is None else unmatched)
    report = out_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    fig_score_distribution(summary, report / "score_distribution.png")
    fig_pass_rate(summary, report / "pass_rate.png")
    fig_misconceptions(summary, report / "misconceptions.png")
    write_pass_matrix(summary, report / "pass_matrix.csv")
    gradebook = grades_dir / "gradebook.csv"
    gradebook_rel = os.path.relpath(gradebook, report) if gradebook.is_file() else None
    index = report / "index.html"
    write_atomic(index, report_html(summary, "../feedback", gradebook_rel))
    return index
