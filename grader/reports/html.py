"""Small HTML helpers shared by the feedback page and the class report.

Pages are self-contained: inline CSS, no scripts, nothing fetched. Every string that
reaches a page goes through ``esc`` (student names, messages and errors are
student-controlled).
"""
from __future__ import annotations

import re
from html import escape

from .records import fmt_points  # noqa: F401 - the one rounding rule, re-exported for the pages

MAX_TEXT = 4000

CSS = """
:root { --ink:#263238; --muted:#607d8b; --line:#e0e6ea; --bg:#f6f8f9; --ok:#2e7d32; --okbg:#e8f5e9;
  --part:#a15c00; --partbg:#fff4e0; --bad:#c62828; --badbg:#fdecea; --accent:#1565c0; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 2px; } h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
a { color: var(--accent); }
code, pre, .mono { font-family: ui-monospace, Menlo, Consolas, "Liberation Mono", monospace; font-size: 13px; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:16px 20px; margin:16px 0; }
header.card { display:flex; justify-content:space-between; align-items:center; gap:16px; flex-wrap:wrap; }
.muted { color: var(--muted); }
.total { text-align:right; } .total .big { font-size: 32px; font-weight: 700; }
.bar { height: 8px; width: 220px; background: var(--line); border-radius: 4px; overflow: hidden; margin-top: 4px; }
.bar > span { display:block; height:100%; background: var(--ok); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align:left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display:inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.passed { color: var(--ok); background: var(--okbg); }
.partial { color: var(--part); background: var(--partbg); }
.failed { color: var(--bad); background: var(--badbg); }
tr.row-partial { background: #fffaf0; } tr.row-failed { background: #fff7f7; }
.banner { border-left: 5px solid var(--bad); background: var(--badbg); }
.banner.warn { border-left-color: #f9a825; background: #fffde7; }
.failure { border-left: 5px solid var(--bad); }
.failure.partial-card { border-left-color: #f9a825; }
.message { background: var(--bg); border-radius: 6px; padding: 10px 12px; }
.cause { margin-top: 12px; } .hint { margin: 4px 0 0; }
dl.where { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 12px 0; }
dl.where dt { color: var(--muted); } dl.where dd { margin: 0; }
.cmp { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
.cmp > div { min-width: 120px; }
table.arr { width: auto; border: 1px solid var(--line); }
table.arr td { padding: 2px 8px; border: 1px solid var(--line); font-family: ui-monospace, Menlo, Consolas, monospace;
  font-size: 12.5px; text-align: right; }
table.arr td.diff { background: var(--badbg); color: var(--bad); font-weight: 600; }
figure { margin: 14px 0 0; overflow-x: auto; } figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
figure img { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
.grid2 { align-items: start; display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
.stats { display:flex; gap: 12px; flex-wrap: wrap; }
.stat { flex: 1 1 140px; background:#fff; border:1px solid var(--line); border-radius:10px; padding: 10px 14px; }
.stat .v { font-size: 24px; font-weight: 700; } .stat .k { color: var(--muted); font-size: 13px; }
.legend { display:flex; flex-wrap:wrap; gap: 6px 18px; font-size: 13px; color: #37474f; margin-top: 8px; }
.legend .key { display:inline-flex; align-items:center; gap:6px; } .legend svg { flex: none; }
footer { color: var(--muted); font-size: 12.5px; margin-top: 28px; }
"""


def esc(value, limit: int = MAX_TEXT) -> str:
    """HTML-escaped text, cut to ``limit`` characters (student output can be huge)."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit} more characters)"
    return escape(text, quote=True)


def code_spans(escaped: str) -> str:
    """`x` -> <code>x</code> in already-escaped text (the diagnosis table uses backticks)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)




def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def badge(state: str) -> str:
    return f'<span class="badge {esc(state)}">{esc(state)}</span>'
