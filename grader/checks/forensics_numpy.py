"""Numerical differentiation done in NumPy (or ``math``/``cmath``) calls, seen by construction.

A backward that copies the forward formula inline never calls ``forward`` or a student
helper: ``(np.tanh(x + h) - np.tanh(x - h)) / (2 * h)`` or ``np.imag(np.tanh(x + 1e-20j)) / 1e-20``.
So while a component's outermost ``backward`` runs (``_wrap_backward`` in ``forensics.py``),
the elementwise functions below are replaced in the ``numpy``, ``math`` and ``cmath``
modules' dicts by ``_NumpyWatch`` objects that note their arguments and call the original:

- an argument with complex numbers: a complex step (``st.complex["Tanh -> np.tanh"]``);
- arguments at two points around one operand value (``x ± h``, or ``x`` and ``x + h``): a
  difference quotient (``st.perturbed["Tanh -> np.tanh"]``), the rule for student helpers;
  so is one call at ``x + h`` of a function whose value at ``x`` is the component's own
  ``self.value`` (``(np.tanh(x + h) - self.value) / h``).

The modules' dicts are restored by one ``dict.update`` when that backward returns or raises
(a watch's ufunc attributes, ``np.maximum.reduce``, are the original's). Not seen: a function
bound under another name before the backward runs (``from numpy import tanh``,
``f = np.tanh``, ``np.core.umath.tanh``), array methods and operators, and a formula whose
arguments are not a shifted copy of an operand value (``np.exp(-(x + h))``).

Loaded into the child between ``forensics_support.py`` and ``forensics.py``.
"""
import cmath
import math
import operator
from typing import Any

import numpy as np

from .forensics_support import _is_complex, _near_refs
from .types import Opaque

NUMPY_WATCHED = ("exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "tanh", "sinh", "cosh", "sin", "cos",
                 "arctan", "sqrt", "power", "square", "reciprocal", "maximum", "minimum", "where", "dot", "matmul",
                 "einsum", "sum", "real", "imag")
MATH_WATCHED = ("exp", "expm1", "log", "log1p", "tanh", "sqrt", "pow")
CMATH_WATCHED = ("exp", "log", "tanh", "sqrt", "sin", "cos")
_WATCHED_MODULES = ((np.__dict__, "np", NUMPY_WATCHED), (math.__dict__, "math", MATH_WATCHED),
                    (cmath.__dict__, "cmath", CMATH_WATCHED))
_NUMPY_BUSY = [False]  # an observation running: the numpy it calls itself is not observed


def _own_value_at(st: Any, orig: Any, ref: np.ndarray) -> bool:
    """``orig(ref)`` is the running component's own value: the call at ``ref + h`` is the
    forward formula at a shifted input (``(np.tanh(x + h) - self.value) / h``)."""
    v = st.numpy_value
    if not isinstance(v, np.ndarray) or v.shape != ref.shape:
        return False
    y = np.asarray(orig(ref))
    return y.shape == v.shape and bool((abs(y - v) <= 1e-12 * (1 + abs(v))).all())


def _numpy_observe(st: Any, name: str, args: tuple, kwargs: dict, orig: Any) -> None:
    values = list(args) + list(kwargs.values()) if kwargs else args
    where = f"{st.current} -> {name}"
    if any(_is_complex(v) for v in values[:8]):
        st.bump(st.complex, where)
        return
    shapes = {r.shape for r in st.refs}
    if not any(getattr(v, "shape", None) in shapes or isinstance(v, (list, tuple, float)) for v in values[:8]):
        return  # no argument that could be a copy of an operand value
    for i, shift in _near_refs(list(values[:8]), st.refs):
        seen = st.shifts.setdefault((where, i), set())
        if seen is not None:
            seen.add(round(shift, 14))
            # two points around x; or one shifted point of the formula that gave self.value
            if (len(seen) >= 2 and any(seen - {0.0})) or (
                    shift != 0.0 and len(args) == 1 and not kwargs and _own_value_at(st, orig, st.refs[i])):
                st.bump(st.perturbed, where)
                st.shifts[(where, i)] = None


class _NumpyWatch:
    """A watched function: called, it notes its arguments while a backward runs and calls the
    original; any other attribute (a ufunc's ``reduce``, ``at``, ``nin``) is the original's."""
    __slots__ = ("_orig", "_name", "_st")

    def __init__(self, orig: Any, name: str, st: Any) -> None:
        self._orig, self._name, self._st = orig, name, st

    def __call__(self, *args: object, **kwargs: object) -> Opaque:
        st = self._st
        if st.backward_depth and not _NUMPY_BUSY[0]:
            _NUMPY_BUSY[0] = True
            try:
                _numpy_observe(st, self._name, args, kwargs, self._orig)
            except Exception:  # noqa: BLE001 - an odd argument: no evidence, and the call goes on
                pass
            finally:
                _NUMPY_BUSY[0] = False
        return self._orig(*args, **kwargs)

    def __getattr__(self, attr: str) -> Opaque:
        return getattr(object.__getattribute__(self, "_orig"), attr)

    def __repr__(self) -> str:
        return repr(self._orig)


def _numpy_plan(st: Any) -> list:
    """[(module dict, names, originals, {name: original}, {name: watch})] of what is there now."""
    plan = []
    for mapping, label, names in _WATCHED_MODULES:
        originals = {n: mapping[n] for n in names if n in mapping and not isinstance(mapping[n], _NumpyWatch)}
        watches = {n: _NumpyWatch(f, f"{label}.{n}", st) for n, f in originals.items()}
        plan.append((mapping, tuple(originals), tuple(originals.values()), originals, watches))
    return plan


def _watch_numpy(st: Any, node: object) -> list:
    """Install the watches (built once per state while the modules hold the same functions);
    returns the plan ``_unwatch_numpy`` restores from. ``node``: the component whose
    backward starts (its value: what a one-sided difference subtracts)."""
    try:
        v = vars(node).get("value")
        v = np.array(v) if isinstance(v, (np.ndarray, np.floating, float)) else None  # a copy; 0-d for a scalar
        st.numpy_value = v if v is not None and v.dtype.kind == "f" and v.size <= 100_000 else None
    except TypeError:
        st.numpy_value = None
    plan = st.numpy_watches
    if not plan or not all(all(map(operator.is_, map(m.get, names), values)) for m, names, values, _, _ in plan):
        plan = st.numpy_watches = _numpy_plan(st)
    for mapping, _, _, _, watches in plan:
        mapping.update(watches)  # one C call: nothing runs between two of its entries
    return plan


def _unwatch_numpy(plan: list | None) -> None:
    for mapping, _, _, originals, _ in plan or ():
        mapping.update(originals)
