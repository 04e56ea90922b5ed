"""Evidence of numerical differentiation, gathered in the grading child while a probe runs.

A backward written from the notes never runs the forward computation again: it reads
``self.value`` and the operands' values. Finite differences, higher-order stencils and
the complex step all evaluate the forward computation at shifted inputs. So while a probe
runs, ``forensics_probe`` counts, by construction:

- calls of ``forward`` (on any instance of any class of the student's namespace that
  defines one) made while a component's ``backward`` runs, per outermost backward class;
- ``forward`` calls made inside ``Backward`` outside every component's backward (more
  than one forward pass means the loop differentiates numerically);
- calls of the student's own module-level functions during a component's backward at two
  points around one of its operands' values (``x ± h``, or ``x`` and ``x + h``: a difference
  quotient), or with complex numbers (``x + ih``); ``sigmoid(self.x.value)`` is neither;
- for ``derivative``/``gradient_fwd``/``gradient_rev``: the calls of ``f`` with plain or
  complex numbers only (the contract is one pass with ``Dual``/``Var`` arguments).
- a ``forward``/``backward`` that is not the wrapped one when it runs: replaced on the class
  or the instance (even if put back later), a new ``__class__``, a class with its own
  ``__getattribute__``; checked after every outermost forward and backward and at the end
  of every case (a property or callable object in their place is wrapped as what the
  instance's attribute gives).

The counts go into the record (``record["forensics"]``) as data; the parent judges them
(``grader/grading/forensics.py``). Only the grading child loads this module (the bundle
``backprop generate`` ships to students does not contain it). Every change to the
student's classes and namespace is undone when the probe returns.
"""
import operator
import types
from collections.abc import Callable

import numpy as np

from .base import _get, probe
from .forensics_support import _check_case_end, _check_dispatch, _harness_codes, _see, _through
from .forensics_support import _is_complex, _near_refs, _operand_values
from .forensics_numpy import _unwatch_numpy, _watch_numpy
from .types import Namespace, Opaque, Record, Spec

FORENSIC_CHECKS = ("component", "backward_loop", "function", "tape")
FORENSIC_FUNCTIONS = ("derivative", "gradient_fwd", "gradient_rev")
FORENSIC_SKIP = {"Forward", "Backward", "SGD", "clear_compgraph", "probe", "report"} | set(FORENSIC_FUNCTIONS)


class _ForensicState:
    def __init__(self, spec: Spec | None = None) -> None:
        self.wrappers = {}      # id -> an installed wrapper
        self.installed = {}     # (class, method) -> the wrapper installed on it
        self.instrumented = {}  # (class, method) -> its method resolves to an installed wrapper
        self.plans = {}         # class -> the methods checked on its instances
        self.ok = {}            # id -> a function found to be ours (the wrappers, the harness's)
        self.forward_codes = set()
        self.numpy_watches = []  # forensics_numpy's plan: the watched functions and their originals
        self.reset()

    def reset(self) -> None:
        """Counts of one case (``forensics_probe_all`` keeps the state across its cases)."""
        self.backward_depth = 0
        self.forward_depth = 0
        self.loop_depth = 0
        self.current = None            # the class name of the outermost backward running
        self.backward_forward = {}     # class -> forward calls inside its backward
        self.loop_forward = 0          # most forward calls in one Backward call, outside component backwards
        self.loop_calls = 0
        self.loop_components = 0
        self.perturbed = {}            # "Class.backward -> helper" -> calls at shifted inputs
        self.complex = {}              # where -> complex values seen
        self.f_calls = {}              # derivative etc. -> {"plain", "traced", "complex"}
        self.refs = []                 # the running backward's operand values
        self.shifts = {}               # (helper site, operand index) -> distinct shifts seen
        self.rebound = {}              # "Class.method" -> times found replaced while the case ran
        self.instances = {}            # id -> (instance, its class): the case's instrumented components

    def release(self) -> None:
        """Drop the wrappers and objects held (the wrappers' closures hold the state: a cycle)."""
        self.wrappers, self.installed, self.instrumented, self.plans, self.ok = {}, {}, {}, {}, {}
        self.numpy_watches = []
        self.instances = {}

    def bump(self, table: dict, key: object, n: int = 1) -> None:
        table[key] = table.get(key, 0) + n

    def evidence(self) -> dict:
        return {"backward_forward": dict(self.backward_forward), "loop_forward": self.loop_forward,
                "loop_components": self.loop_components, "perturbed": dict(self.perturbed),
                "complex": dict(self.complex), "f_calls": {k: dict(v) for k, v in self.f_calls.items()},
                "rebound": dict(self.rebound)}


def _wrap_forward(st: _ForensicState, cls: type | None, orig: Callable[..., Opaque]) -> Callable[..., Opaque]:
    def forward(self, *args: object, **kwargs: object) -> Opaque:
        if st.forward_depth == 0:
            if st.backward_depth:
                st.bump(st.backward_forward, st.current)
            elif st.loop_depth:
                st.loop_calls += 1
        _see(st, self)
        st.forward_depth += 1
        try:
            out = orig(self, *args, **kwargs)
        finally:
            st.forward_depth -= 1
            if not st.forward_depth:  # the outermost forward: a nested one (super()) is checked with it
                _check_dispatch(st, self)
        if (st.backward_depth or st.loop_depth) and _is_complex(getattr(self, "value", None)):
            st.bump(st.complex, f"{st.current or 'Backward'} (a forward value)")
        return out
    forward.__wrapped__ = orig
    return forward


def _wrap_backward(st: _ForensicState, cls: type, orig: Callable[..., Opaque]) -> Callable[..., Opaque]:
    def backward(self, *args: object, **kwargs: object) -> Opaque:
        outer = st.backward_depth == 0
        if outer:
            st.current = type(self).__name__
            st.refs = _operand_values(self)
            st.shifts = {}
        _see(st, self)
        watched = _watch_numpy(st, self) if outer else None  # NumPy's math, while the outermost backward runs
        st.backward_depth += 1
        try:
            return orig(self, *args, **kwargs)
        finally:
            st.backward_depth -= 1
            _unwatch_numpy(watched)
            if outer:
                _check_dispatch(st, self)
            if outer:
                st.current = None
    backward.__wrapped__ = orig
    return backward


def _watch_instances(st: _ForensicState, comps: list) -> list:
    """Components whose class is not the student's (the loop check's stand-ins): their
    ``forward`` watched on the instance for the length of one ``Backward`` call."""
    watched = []
    for c in comps[:10_000]:
        try:
            f = getattr(type(c), "forward", None)
            if "forward" in vars(c) or not callable(f) or getattr(f, "__wrapped__", None) is not None:
                continue
            w = _wrap_forward(st, type(c), f)
            st.wrappers[id(w)] = st.ok[id(w)] = w
            c.forward = w.__get__(c)
            watched.append(c)
        except (TypeError, AttributeError):
            continue
    return watched


def _wrap_loop(st: _ForensicState, ns: Namespace, orig: Callable[..., Opaque]) -> Callable[..., Opaque]:
    def Backward(*args: object, **kwargs: object) -> Opaque:
        """Counts per call: one forward pass inside Backward (a student re-running Forward()
        first) is no differentiation; the most forward calls of any one call are kept."""
        outer = st.loop_depth == 0
        if outer:
            st.loop_calls = 0
        st.loop_depth += 1
        comps = _get(ns, "components")
        watched = []
        if outer and isinstance(comps, list):
            st.loop_components = max(st.loop_components, len(comps))
            watched = _watch_instances(st, comps)
        try:
            return orig(*args, **kwargs)
        finally:
            st.loop_depth -= 1
            for c in watched:
                try:
                    del c.forward
                except AttributeError:
                    pass
            if outer:
                st.loop_forward = max(st.loop_forward, st.loop_calls)
    return Backward


def _wrap_helper(st: _ForensicState, name: str, orig: Callable[..., Opaque]) -> Callable[..., Opaque]:
    def helper(*args: object, **kwargs: object) -> Opaque:
        if st.backward_depth or st.loop_depth:
            values = list(args) + list(kwargs.values())
            where = f"{st.current or 'Backward'} -> {name}"
            if any(_is_complex(v) for v in values):
                st.bump(st.complex, where)
            elif st.backward_depth:
                # a difference quotient: the helper at two points around one value (x ± h, or
                # x and x + h); one near-coincidence alone is not evidence
                for i, shift in _near_refs(values, st.refs):
                    seen = st.shifts.setdefault((where, i), set())
                    if seen is not None:
                        seen.add(round(shift, 14))
                        if len(seen) >= 2 and any(seen - {0.0}):
                            st.bump(st.perturbed, where)
                            st.shifts[(where, i)] = None
        return orig(*args, **kwargs)
    return helper


def _wrap_differentiator(st: _ForensicState, ns: Namespace, name: str, orig: Callable[..., Opaque]) -> Callable[..., Opaque]:
    traced = tuple(c for c in (_get(ns, "Dual"), _get(ns, "Var")) if isinstance(c, type))

    def kind_of(values: list) -> str:
        flat = []
        for v in values:
            flat += list(v[:64]) if isinstance(v, (list, tuple)) else [v]
        if any(_is_complex(v) for v in flat):
            return "complex"
        return "traced" if any(isinstance(v, traced) for v in flat) else "plain"

    def differentiator(*args: object, **kwargs: object) -> Opaque:
        args = list(args)
        f = kwargs.get("f", args[0] if args else None)
        if callable(f):
            counts = st.f_calls.setdefault(name, {})

            def counted(*a: object, **k: object) -> Opaque:
                st.bump(counts, kind_of(list(a) + list(k.values())))
                return f(*a, **k)
            if "f" in kwargs:
                kwargs["f"] = counted
            else:
                args[0] = counted
        return orig(*args, **kwargs)
    return differentiator


def _set(ns: Namespace, name: str, value: object) -> None:
    if isinstance(ns, dict):
        ns[name] = value
    else:
        setattr(ns, name, value)


def _install_forensics(ns: Namespace, st: _ForensicState, undo: list) -> None:
    """Wrap what the probe can reach; ``undo`` gets what to restore (applied in reverse)."""
    items = list(ns.items()) if isinstance(ns, dict) else list(vars(ns).items())
    module_globals = ns if isinstance(ns, dict) else vars(ns)
    st.wrappers, st.installed, st.instrumented, st.plans = {}, {}, {}, {}
    _harness_codes()  # in-process: the check modules imported since
    classes = [cls for _, obj in items if isinstance(obj, type) for cls in obj.__mro__ if cls is not object]
    # a forward's code under another name (``_f = Sigmoid.forward``) is counted as a forward
    st.forward_codes = {f.__code__ for cls in classes for f in [cls.__dict__.get("forward")]
                        if isinstance(f, types.FunctionType)}
    seen = set()
    for cls in classes:
        if cls in seen:
            continue
        seen.add(cls)
        for method, f in list(cls.__dict__.items()):
            alias = isinstance(f, types.FunctionType) and f.__code__ in st.forward_codes
            if method not in ("forward", "backward") and not alias:
                continue
            if isinstance(f, type) or f is None:
                continue
            if not isinstance(f, types.FunctionType):
                # a property, staticmethod, classmethod or callable object: wrapped as what the
                # instance's attribute gives, so that it is counted like a method
                if not (callable(f) or hasattr(type(f), "__get__")):
                    continue
                f = _through(f)
            if callable(f):
                w = (_wrap_backward if method == "backward" else _wrap_forward)(st, cls, f)
                try:
                    setattr(cls, method, w)
                except (TypeError, AttributeError):
                    continue  # a built-in type: no student code to watch
                undo.append((cls, method, getattr(f, "__through__", f)))
                st.wrappers[id(w)] = w
                st.installed[(cls, method)] = w
    st.ok = dict(st.wrappers)
    for cls in seen:  # which classes' instances must dispatch to a wrapper
        for method in ("forward", "backward"):
            f = next((k.__dict__[method] for k in cls.__mro__ if method in k.__dict__), None)
            st.instrumented[(cls, method)] = st.wrappers.get(id(f)) is f and f is not None
    for name, obj in items:
        if isinstance(obj, type):
            continue
        elif callable(obj) and getattr(obj, "__globals__", None) is module_globals:
            if getattr(obj, "__code__", None) in st.forward_codes:
                undo.append((ns, name, obj))
                _set(ns, name, _wrap_forward(st, None, obj))
            elif name == "Backward":
                undo.append((ns, name, obj))
                _set(ns, name, _wrap_loop(st, ns, obj))
            elif name in FORENSIC_FUNCTIONS:
                undo.append((ns, name, obj))
                _set(ns, name, _wrap_differentiator(st, ns, name, obj))
            elif name not in FORENSIC_SKIP and not name.startswith("__"):
                undo.append((ns, name, obj))
                _set(ns, name, _wrap_helper(st, name, obj))


def _undo_forensics(ns: Namespace, undo: list) -> None:
    for owner, name, value in reversed(undo):
        try:
            if owner is ns:
                _set(ns, name, value)
            else:
                setattr(owner, name, value)
        except Exception:
            pass


def _layout(ns: Namespace) -> tuple:
    """What decides what ``_install_forensics`` wraps, by identity: the namespace's names and
    objects, each class's MRO, and every ``forward``/``backward`` its classes define (the
    wrappers, once installed). Equal layouts: a fresh install would wrap the same objects."""
    mapping = ns if isinstance(ns, dict) else vars(ns)
    values = tuple(mapping.values())
    mros = tuple(obj.__mro__ for obj in values if isinstance(obj, type))
    seen, methods = {object}, []
    for mro in mros:
        for cls in mro:
            if cls not in seen:
                seen.add(cls)
                methods += (cls.__dict__.get("forward"), cls.__dict__.get("backward"))
    return tuple(mapping), values, mros, tuple(methods)


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(len(x) == len(y) and all(map(operator.is_, x, y)) for x, y in zip(a, b))


def forensics_probe_all(ns: Namespace, specs: list[Spec]) -> list:
    """``forensics_probe`` of every spec, in order, with the same records. The wrappers are
    installed once for the run of cases that need them (installing and undoing them per case
    cost a third of the probes), their counts reset per case; before each case the layout
    is compared with the one installed, and a namespace or class the student's code changed
    since gets a fresh install, as ``forensics_probe`` would give it."""
    st = _ForensicState()
    undo = None      # the installed wrappers' undo list (None: nothing installed)
    layout = None    # _layout after the install
    records = []
    try:
        for spec in specs:
            if not isinstance(spec, dict) or spec.get("check") not in FORENSIC_CHECKS:
                if undo is not None:
                    _undo_forensics(ns, undo)
                    undo = None
                records.append(probe(ns, spec))
                continue
            try:
                if undo is not None and not _same(_layout(ns), layout):
                    _undo_forensics(ns, undo)
                    undo = None
                if undo is None:
                    undo = []
                    _install_forensics(ns, st, undo)
                    layout = _layout(ns)
            except Exception:
                if undo:
                    _undo_forensics(ns, undo)
                undo = None
                records.append(probe(ns, spec))
                continue
            st.reset()
            rec = probe(ns, spec)
            _check_case_end(st)
            st.instances = {}  # the case's objects: not kept alive until the next case
            if isinstance(rec, dict):
                rec["forensics"] = st.evidence()
            records.append(rec)
    finally:
        if undo is not None:
            _undo_forensics(ns, undo)
        st.release()
    return records


def forensics_probe(ns: Namespace, spec: Spec) -> Record:
    """``probe`` with the evidence of numerical differentiation in ``record["forensics"]``."""
    if not isinstance(spec, dict) or spec.get("check") not in FORENSIC_CHECKS:
        return probe(ns, spec)  # training runs: thousands of backward calls, not a derivative under test
    st = _ForensicState(spec)
    undo = []
    try:
        _install_forensics(ns, st, undo)
    except Exception:
        _undo_forensics(ns, undo)
        undo = None
    try:
        rec = probe(ns, spec)
        if undo is not None:
            _check_case_end(st)
    finally:
        if undo is not None:
            _undo_forensics(ns, undo)
        st.release()
    if isinstance(rec, dict) and undo is not None:
        rec["forensics"] = st.evidence()
    return rec


_harness_codes()  # before any student code runs
