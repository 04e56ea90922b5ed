"""The lazy student's notebooks, rendered from the release form of the assignment.

- ``stubs``: the release as handed out (every solution region ``raise NotImplementedError()``);
- ``noop``: every stub replaced by ``pass`` (functions return None);
- ``forward_only``: the ``forward`` methods done (from the reference), every other stub ``pass``;
- ``backward_noop``: everything done except the backward half (components' ``backward``,
  ``Backward``, ``Var.backward``), which is ``pass``.

Each must earn 0 on every test owning a unit it leaves undone.
"""
from __future__ import annotations

from grader.authoring.assignment import Assignment

from .namespace import NotebookCell, notebook_cells
from .units import Unit

BASELINES = ("stubs", "noop", "forward_only", "backward_noop")


def _is_backward(qualname: str | None) -> bool:
    return bool(qualname) and qualname.split(".")[-1].lower() == "backward"


def _is_forward(qualname: str | None) -> bool:
    return bool(qualname) and qualname.split(".")[-1] == "forward"


def choose(baseline: str):
    if baseline == "stubs":
        return lambda q: "stub"
    if baseline == "noop":
        return lambda q: "pass"
    if baseline == "forward_only":
        return lambda q: "keep" if _is_forward(q) else "pass"
    if baseline == "backward_noop":
        return lambda q: "pass" if _is_backward(q) else "keep"
    raise ValueError(f"unknown baseline {baseline!r}")


def undone(baseline: str, units: list[Unit]) -> list[Unit]:
    """The units a baseline leaves undone."""
    if baseline in ("stubs", "noop"):
        return list(units)
    if baseline == "forward_only":
        return [u for u in units if u.method != "forward"]
    return [u for u in units if u.is_backward]


def cells(a: Assignment, baseline: str) -> list[NotebookCell]:
    return notebook_cells(a, choose(baseline))
