"""Component contracts, declared beside each component's class: ``declare(Class, ...)``.

A contract is what the grader needs to check a component without reading its code:
its operands, the shapes it is tried on, the domain its operands are drawn from, its
forward value *as the course notes state it* (a NumPy expression, written independently
of ``forward``), the formula text shown in feedback, and optional hints: a diagnosis with
the numeric evidence that shows it. The grader reads the declarations as plain data
(``declared_data``); the student bundle carries that data, never this package's code.

Formula and evidence expressions are evaluated with NumPy as ``np``, the operands and
keyword arguments by name, and the notation of the notes: ``sigmoid(z)``,
``logsumexp(z)`` (over the last axis), ``pick(z, labels)`` (each row's entry at its
label), ``correlate2d(x, W, stride, padding)`` (the cross-correlation of a batch of
images with a kernel bank) and ``window_max(x, size, stride)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hint:
    """A component-specific diagnosis: when ``evidence`` is true of a failed case's
    numbers, the verdict says ``words`` and ``advice`` instead of a generic diagnosis.

    ``operand`` names the operand whose grad is examined (backward), or is None for the
    forward value. ``evidence`` is a NumPy expression of the operands by name, ``v_bar``
    (the upstream grad), ``got`` (the student's grad of ``operand``, or the student's
    value) and ``want`` (the exact one); ``close(a, b)`` compares within the case's tolerance.
    """

    code: str
    words: str
    advice: str
    evidence: str
    operand: str | None = None


@dataclass(frozen=True)
class Contract:
    """One component class's contract (see the module docstring for the expressions).

    ``shapes``: the default cases, each a list of operand shapes. ``labels``: operands
    that are integer class labels (they get no grad). ``kwargs``: the constructor's
    keyword arguments and their defaults. ``domain``: None (either sign, away from 0),
    ``"distinct"`` (entries pairwise apart: no ties in a max), or a dict with ``kinks``
    (points the values keep away from) and ``regions`` (name -> (low, high), one per branch
    regime; every case holds every region). ``elementwise``: usable in random loop graphs.
    ``large_inputs``: values for a forward-only stability case on inputs in the thousands
    (spread over the first operand), or one array per operand name. ``graph_inputs``: a
    condition on the first operand's value for a random loop-invariant graph to use the
    class on it (a value where the class is smooth and moderate), or None for any value.
    """

    name: str
    operands: tuple[str, ...]
    formula: str
    text: str
    shapes: tuple = (((4, 3),),)
    labels: tuple[str, ...] = ()
    kwargs: dict = field(default_factory=dict)
    domain: dict | str | None = None
    elementwise: bool = False
    large_inputs: tuple | dict | None = None
    graph_inputs: str | None = None
    hints: tuple[Hint, ...] = ()

    def as_data(self) -> dict:
        """Plain data (str, float, int, tuple, dict): what the grader and the bundle read."""
        return {"operands": tuple(self.operands), "formula": self.formula, "text": self.text,
                "shapes": tuple(tuple(tuple(int(n) for n in s) for s in case) for case in self.shapes),
                "labels": tuple(self.labels), "kwargs": dict(self.kwargs), "domain": _plain(self.domain),
                "elementwise": bool(self.elementwise), "large_inputs": _plain(self.large_inputs),
                "graph_inputs": self.graph_inputs,
                "hints": tuple({"code": h.code, "words": h.words, "advice": h.advice, "evidence": h.evidence,
                                "operand": h.operand} for h in self.hints)}


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return tuple(_plain(v) for v in x)
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return int(x)
    return float(x)


# name -> contract, in declaration (import) order
DECLARED: dict[str, Contract] = {}


def declare(cls: type, operands, formula: str, text: str, **fields) -> type:
    """Declare ``cls``'s contract; returns ``cls``. A second declaration of a name is an error."""
    name = cls.__name__
    if name in DECLARED:
        raise ValueError(f"{name} is declared twice")
    hints = tuple(h if isinstance(h, Hint) else Hint(**h) for h in fields.pop("hints", ()))
    DECLARED[name] = Contract(name, tuple(operands), formula, text, hints=hints, **fields)
    return cls


def declared_data() -> dict[str, dict]:
    """Every declared contract as plain data, in declaration order."""
    return {name: c.as_data() for name, c in DECLARED.items()}
