"""The mutation corpus: realistic student variants of the EDF code, buggy and correct.

Each file in ``buggy/`` or ``correct/`` is what one student could have written: a
docstring (the bug in the student's words), ``EXPECT`` (buggy only: the diagnosis
and component the grader must report), imports, then the notebook-ready definitions
that replace the reference's. A variant's namespace is the reference's public names
overridden by the file's definitions, like a notebook whose given cells come from
the reference and whose solution cells are the student's.

``EXPECT["graphs"]`` (optional) names the loop-check set-ups of tests/test_corpus.py
on which the bug is observable (``[]``: none, e.g. an overflow needs inputs no graph
has); a ``Backward`` variant without it is checked on every set-up.

A variant whose ``EXPECT["diagnosis"]`` is ``"missing"`` is a notebook in which the
student's cell does not define ``EXPECT["component"]`` under that name (renamed or
deleted): that name is removed from the namespace before the file runs.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import reference

HERE = Path(__file__).resolve().parent
KINDS = ("buggy", "correct")


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str
    path: Path
    doc: str
    expect: dict | None


def _module(path: Path) -> ast.Module:
    return ast.parse(Path(path).read_text(), filename=str(path))


def read_expect(path) -> dict | None:
    """The file's ``EXPECT`` literal (None when absent), read without running the file."""
    for node in _module(path).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "EXPECT"):
            return ast.literal_eval(node.value)
    return None


def base_namespace() -> dict:
    """A fresh dict of every public name of ``reference``, plus ``np``.

    ``components``/``params``/``inputs`` are the very lists ``reference.core`` appends
    to, so a variant's ``Backward`` (importing them from ``reference.core``) and every
    ``CompNode`` share one graph.
    """
    ns = {name: getattr(reference, name) for name in reference.__all__}
    ns["np"] = np
    return ns


def load_variant(path) -> tuple[dict, dict | None]:
    """(ns, EXPECT) for one variant file: reference names overridden by the file's code."""
    path = Path(path)
    expect = read_expect(path)
    ns = base_namespace()
    if expect and expect.get("diagnosis") == "missing":
        ns.pop(expect["component"], None)
    ns["__name__"] = f"corpus_{path.parent.name}_{path.stem}"
    exec(compile(path.read_text(), str(path), "exec"), ns)
    ns.pop("EXPECT", None)
    return ns, expect


def variant_paths(kind: str) -> list[Path]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return sorted(p for p in (HERE / kind).glob("*.py") if not p.name.startswith("_"))


def iter_variants(kind: str):
    """Every variant of ``kind`` ("buggy" or "correct"), sorted by name, as ``Variant``."""
    for path in variant_paths(kind):
        yield Variant(name=path.stem, kind=kind, path=path,
                      doc=ast.get_docstring(_module(path)) or "", expect=read_expect(path))


def notebook_source(path) -> str:
    """The variant's definitions as a notebook solution cell.

    Drops the module docstring (it names the bug), ``EXPECT`` and every
    ``from reference... import`` / ``import reference...`` line: in a notebook those
    names come from the given cells. Everything else is kept verbatim.
    """
    path = Path(path)
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    drop = set()
    body = _module(path).body
    for i, node in enumerate(body):
        docstring = (i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                     and isinstance(node.value.value, str))
        expect = (isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "EXPECT" for t in node.targets))
        from_ref = (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and node.module.split(".")[0] == "reference")
        import_ref = (isinstance(node, ast.Import)
                      and all(a.name.split(".")[0] == "reference" for a in node.names))
        if docstring or expect or from_ref or import_ref:
            drop.update(range(node.lineno - 1, node.end_lineno))
    kept = "".join(line for i, line in enumerate(lines) if i not in drop)
    # collapse the blank lines left where the header was
    out, blank = [], 0
    for line in kept.lstrip("\n").splitlines():
        blank = blank + 1 if not line.strip() else 0
        if blank <= 2:
            out.append(line)
    return "\n".join(out).rstrip() + "\n"
