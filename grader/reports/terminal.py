"""Readable terminal output without dependencies: aligned tables and a progress bar with ETA.

``progress`` draws a live bar on stderr when stderr is a terminal; otherwise (CI logs,
pipes) it prints a plain line at every quarter and at the end, and with ``quiet`` nothing.
Colour only on a terminal and never when ``NO_COLOR`` is set.
"""
from __future__ import annotations

import os
import sys
import time
import unicodedata
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def use_color(stream=None) -> bool:
    stream = stream or sys.stdout
    return (hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ
            and os.environ.get("TERM") != "dumb")


def style(text: str, *names: str, stream=None) -> str:
    """``text`` wrapped in ANSI styles when ``stream`` (stdout by default) is a colour terminal."""
    if not names or not use_color(stream):
        return text
    codes = ";".join(_STYLES[n] for n in names)
    return f"\033[{codes}m{text}\033[0m"


def _width(text: str) -> int:
    """Display width: ANSI escapes take none, wide (CJK) characters two columns."""
    out, i = 0, 0
    while i < len(text):
        if text[i] == "\033":
            j = text.find("m", i)
            i = len(text) if j < 0 else j + 1
            continue
        out += 2 if unicodedata.east_asian_width(text[i]) in "WF" else (0 if unicodedata.combining(text[i]) else 1)
        i += 1
    return out


def _is_num(text: str) -> bool:
    t = text.strip().rstrip("%").replace("/", "").replace(".", "", 1).replace("-", "", 1).replace(" ", "")
    return t.isdigit()


def table(rows: Iterable[Iterable], headers: Iterable | None = None, align: str | None = None) -> str:
    """Rows as an aligned plain-text table; numeric columns right-aligned.

    ``align``: one of ``l``/``r`` per column to override the guess.
    """
    rows = [["" if c is None else str(c) for c in r] for r in rows]
    head = None if headers is None else [str(h) for h in headers]
    ncol = max([len(r) for r in rows] + [len(head) if head else 0])
    rows = [r + [""] * (ncol - len(r)) for r in rows]
    widths = [max([_width(r[i]) for r in rows] + [_width(head[i]) if head and i < len(head) else 0])
              for i in range(ncol)]
    if align is None:
        align = "".join("r" if rows and all(_is_num(r[i]) or not r[i] for r in rows)
                        and any(r[i] for r in rows) else "l" for i in range(ncol))

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            pad = " " * (widths[i] - _width(c))
            out.append(pad + c if align[i] == "r" else c + pad)
        return "  ".join(out).rstrip()

    lines = []
    if head:
        head = head + [""] * (ncol - len(head))
        lines += [line(head), "  ".join("─" * w for w in widths)]
    lines += [line(r) for r in rows]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """A progress bar with rate and ETA; ``update(n, note)`` per finished item."""

    def __init__(self, total: int | None, label: str = "", stream=None, quiet: bool = False,
                 live: bool | None = None, min_interval: float = 0.1):
        self.total, self.label, self.quiet = total, label, quiet
        self.stream = stream or sys.stderr
        self.live = (hasattr(self.stream, "isatty") and self.stream.isatty()) if live is None else live
        self.done, self.note = 0, ""
        self.start = self._last = time.monotonic()
        self._quarter = 0
        self.min_interval = min_interval

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def line(self, width: int = 120) -> str:
        elapsed = time.monotonic() - self.start
        label = f"{self.label} " if self.label else ""
        if not self.total:
            return f"{label}{self.done} done  {_clock(elapsed)}"
        frac = min(1.0, self.done / self.total)
        eta = elapsed / self.done * (self.total - self.done) if self.done else None
        tail = (f" {self.done}/{self.total}  {_clock(elapsed)} elapsed"
                + (f", ETA {_clock(eta)}" if eta is not None and self.done < self.total else ""))
        note = f"  {self.note}" if self.note else ""
        bar_w = max(10, min(40, width - len(label) - len(tail) - len(note) - 4))
        filled = int(round(frac * bar_w))
        bar = "█" * filled + "░" * (bar_w - filled)
        return f"{label}{bar} {100 * frac:3.0f}%{tail}{note}"

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self.note = note[:30]
        if self.quiet:
            return
        now = time.monotonic()
        if self.live:
            if now - self._last >= self.min_interval or (self.total and self.done >= self.total):
                width = _term_width(self.stream)
                self.stream.write("\r\033[2K" + self.line(width)[: width - 1])
                self.stream.flush()
                self._last = now
        elif self.total:
            quarter = int(4 * self.done / self.total)
            if quarter > self._quarter:
                self._quarter = quarter
                self.stream.write(self.line() + "\n")
                self.stream.flush()

    def close(self) -> None:
        if self.quiet:
            return
        if self.live:
            self.stream.write("\r\033[2K" + self.line(_term_width(self.stream)) + "\n")
        elif not self.total or self._quarter < 4:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
        self.quiet = True  # closing twice writes once


def _term_width(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, AttributeError, ValueError):
        return 80


def progress(iterable: Iterable[T], total: int | None = None, label: str = "", *, quiet: bool = False,
             stream=None, note=None) -> Iterator[T]:
    """Yield from ``iterable``, drawing a progress bar; ``note(item)`` names the item just done."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    bar = Progress(total, label, stream=stream, quiet=quiet)
    try:
        for item in iterable:
            yield item
            bar.update(1, note(item) if note else "")
    finally:
        bar.close()
