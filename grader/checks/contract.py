"""The component contract, read from the declarations beside the reference's classes
(``declare(Class, ...)`` in ``reference/``; ``declared.py`` holds them as data).

Numeric expectations (component checks, graphs) come from each class's ``formula``: the
forward value as the course notes state it, written apart from the solution's code and
evaluated here with NumPy and the notes' notation (``notation.py``). The tables below are
views of the declarations under the names the checks use.
"""
from typing import Any

import numpy as np

from .base import DIAGNOSES
from .declared import DECLARED
from .notation import NOTATION


class DeclaredFormula:
    """A class's declared forward formula as a function of its operands (positional, in
    declared order) and its constructor's keyword arguments (declared defaults)."""

    def __init__(self, name: str, operands: tuple, formula: str, defaults: dict) -> None:
        self.name, self.operands, self.formula, self.defaults = name, tuple(operands), formula, dict(defaults)
        self._code = None  # compiled on first use: a child that never evaluates it pays nothing

    def __call__(self, *operands: np.ndarray, **kwargs: Any) -> np.ndarray:
        if len(operands) != len(self.operands):
            raise TypeError(f"{self.name}'s formula takes {len(self.operands)} operands, got {len(operands)}")
        if self._code is None:
            self._code = compile(self.formula, f"<{self.name} formula>", "eval")
        env = {"__builtins__": {}, **NOTATION, **self.defaults, **kwargs}
        env.update(zip(self.operands, operands))
        return np.asarray(eval(self._code, env))

    def __repr__(self) -> str:
        return f"<formula of {self.name}: {self.formula}>"


def _domain(declared: str | dict | None) -> dict | None:
    if declared is None:
        return None
    if isinstance(declared, str):
        return {"kinks": (), "domain": declared}
    return {"kinks": tuple(declared.get("kinks", ())), "regions": dict(declared.get("regions") or {})}


OPERANDS = {name: tuple(c["operands"]) for name, c in DECLARED.items()}

FORMULAS = {name: DeclaredFormula(name, c["operands"], c["formula"], c["kwargs"]) for name, c in DECLARED.items()}

# the formula as feedback states it
FORMULA_TEXT = {name: c["text"] for name, c in DECLARED.items()}

# keyword arguments of each constructor, with their defaults
KWARGS = {name: dict(c["kwargs"]) for name, c in DECLARED.items()}

# the default cases of a component check: each a list of operand shapes
SHAPES = {name: [list(case) for case in c["shapes"]] for name, c in DECLARED.items()}

# operands that are integer class labels (drawn as integers, given no grad)
LABELS = {name: tuple(c["labels"]) for name, c in DECLARED.items() if c["labels"]}

# classes with a forward-only case on inputs in the thousands
LARGE_INPUTS = {name: c["large_inputs"] for name, c in DECLARED.items() if c["large_inputs"] is not None}

# component-specific diagnoses: class -> hints (code, words, advice, evidence, operand)
HINTS = {name: tuple(c["hints"]) for name, c in DECLARED.items() if c["hints"]}

# the values a random loop graph may feed a class (its first operand's), as a condition
GRAPH_INPUTS = {name: DeclaredFormula(name, c["operands"][:1], c["graph_inputs"], {})
                for name, c in DECLARED.items() if c.get("graph_inputs")}

ELEMENTWISE = tuple(name for name, c in DECLARED.items() if c["elementwise"])

ALL_CLASSES = tuple(OPERANDS)


# The input domain of each component, as data: ``regions`` are the intervals its operand
# values are drawn from, one per branch regime of the unit (both sides of a kink, both
# tails and the middle of a saturating function), each a margin away from kinks and from
# zero so that no gradient is tiny. ``kinks`` are the points the regions keep away from.
# Every case holds every region: an array case spreads its elements over the regions
# (balanced, in random positions); an operand with fewer elements than regions (0-d) is
# judged on one instance per region, and the case passes only if all of them do.
# Classes absent here (no branch: Conv2D and Flatten among them) draw each element from a
# random one of DEFAULT_REGIONS; ``"domain": "distinct"`` (MaxPool2D: a max's kink is a
# tie) draws entries pairwise apart (``conv_contract.sample_distinct``).
DOMAINS = {name: _domain(c["domain"]) for name, c in DECLARED.items() if c["domain"] is not None}


# Operands of the other classes: either sign, magnitude at least 0.3 (never a vanishing
# factor of a product or gradient).
DEFAULT_REGIONS = {"x < 0": (-2.0, -0.3), "x > 0": (0.3, 2.0)}


def _describe_hints() -> None:
    """A declared hint's code reads like the built-in diagnoses in every verdict and report."""
    for hints in HINTS.values():
        for hint in hints:
            DIAGNOSES.setdefault(hint["code"], (hint["words"], hint["advice"]))


_describe_hints()
