"""What ``forensics.py``'s wrappers test: values, and whether the wrapped code ran.

Values: is an argument complex, or a shifted copy of a component's operand (``x ± h``)?

Dispatch: the wrappers count only what runs through them. A ``forward``/``backward``
replaced while a test runs (on the class, on the instance, by a new ``__class__``, by a
class's own ``__getattribute__``), even if put back later, is found at the next check:
after every outermost forward and backward, and at the end of every case. Being replaced
is the evidence (``st.rebound``), whatever the replacement computes.

Loaded into the child just before ``forensics.py`` (``child_source`` in
``grader/grading/forensics.py``).
"""
import sys
import types
from typing import Any

import numpy as np

from .types import Opaque

# ``st`` below is forensics._ForensicState, defined after this module (hence ``Any``).


def _is_complex(x: object) -> bool:
    if isinstance(x, complex):
        return True
    if isinstance(x, np.ndarray) or isinstance(x, np.generic):
        return x.dtype.kind == "c"
    if isinstance(x, (list, tuple)):
        return any(_is_complex(v) for v in x[:64])
    return isinstance(getattr(x, "value", None), np.ndarray) and x.value.dtype.kind == "c"


def _near_refs(x: object, refs: list[np.ndarray]) -> list:
    """[(ref index, shift)] for the spec values x is a copy of (shift 0.0: x is the value
    itself) or a shifted copy of: same shape, off by more than rounding and at most a
    finite-difference step (shift: the signed largest difference)."""
    if isinstance(x, (list, tuple)):
        return [hit for v in x[:16] for hit in _near_refs(v, refs)]
    if not isinstance(x, (np.ndarray, float, np.floating)):  # a node passed whole is no shifted input
        return []
    a = np.asarray(x)
    if a.dtype.kind != "f" or a.size == 0:
        return []
    hits, exact = [], []
    for i, r in enumerate(refs):
        if r.shape != a.shape:
            continue
        d = a - r  # methods and operators, not np.abs: forensics_numpy may be watching numpy's
        k = int(abs(d).argmax())
        worst = abs(float(d.flat[k]))
        scale = 1 + float(abs(r).max())
        if worst == 0:
            exact.append((i, 0.0))
        elif 1e-10 * scale < worst <= 1e-2 * scale:  # above rounding (values computed twice), a step h
            hits.append((i, float(d.flat[k])))
    return exact or hits  # the value itself: not also a shifted copy of another operand


def _operand_values(node: Opaque) -> list:
    """The float values of a component's operands as its backward starts: a helper called
    at a shifted copy of one of them is evaluating a difference quotient."""
    out = []
    try:
        for v in list(vars(node).values())[:16]:
            a = getattr(v, "value", None)
            if v is not node and isinstance(a, np.ndarray) and a.dtype.kind == "f" and 0 < a.size <= 100_000:
                out.append(a.copy())
    except TypeError:
        pass
    return out


_HARNESS_CODES = set()  # the harness's own code objects (its wrappers may wrap ours: the loop check's)
_HARNESS_SCANNED = set()  # ids of the namespaces scanned for them
_HARNESS_SCANNED_MODULES = [-1]  # len(sys.modules) when last scanned


def _harness_codes() -> set:
    """The code of the checks' functions, nested ones included. The child's bundle is
    scanned when it loads (reading a grader function's ``__code__`` later, while student code
    may be running, is what the harness's audit hook reports); in-process, the
    ``grader.checks`` modules are scanned as they appear."""
    spaces = [globals()]
    if len(sys.modules) != _HARNESS_SCANNED_MODULES[0]:
        _HARNESS_SCANNED_MODULES[0] = len(sys.modules)
        spaces += [vars(m) for name, m in list(sys.modules.items())
                   if name.startswith("grader.checks") and isinstance(m, types.ModuleType)]
    todo = []
    for space in spaces:
        if id(space) in _HARNESS_SCANNED:
            continue
        _HARNESS_SCANNED.add(id(space))
        for obj in list(space.values()):
            if isinstance(obj, type) and obj.__module__ == space.get("__name__"):
                todo += [f.__code__ for f in vars(obj).values() if isinstance(f, types.FunctionType)]
            elif isinstance(obj, types.FunctionType) and obj.__globals__ is space:
                todo.append(obj.__code__)
    while todo:
        code = todo.pop()
        if code not in _HARNESS_CODES:
            _HARNESS_CODES.add(code)
            todo += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return _HARNESS_CODES


def _ours(st: Any, f: object, depth: int = 0) -> bool:
    """f is an installed wrapper, or the harness's own function (a stand-in's method, the
    loop check's wrapper) whose closure holds nothing else."""
    if isinstance(f, types.MethodType):
        f = f.__func__
    if st.wrappers.get(id(f)) is f:
        return True
    if depth > 3 or not isinstance(f, types.FunctionType) or f.__code__ not in _HARNESS_CODES:
        return False
    for cell in f.__closure__ or ():
        try:
            inner = cell.cell_contents
        except ValueError:
            continue
        if isinstance(inner, (types.FunctionType, types.MethodType)) and not _ours(st, inner, depth + 1):
            return False
    return True


def _expects(st: Any, cls: type, method: str) -> bool:
    """Instances of ``cls`` should run an installed ``method`` wrapper: a class of its MRO had one."""
    key = (cls, method)
    if key not in st.instrumented:
        st.instrumented[key] = any(st.instrumented.get((k, method)) for k in cls.__mro__[1:])
    return st.instrumented[key]


def _see(st: Any, obj: object) -> None:
    """Remember a component of an instrumented class (checked after its forward and backward,
    and again when the case ends)."""
    if id(obj) not in st.instances and len(st.instances) < 10_000:
        st.instances[id(obj)] = (obj, type(obj))


def _resolve(cls: type, method: str) -> object:
    for k in cls.__mro__:
        f = k.__dict__.get(method)
        if f is not None:
            return f
    return None


def _check_dispatch(st: Any, obj: object) -> None:
    entry = st.instances.get(id(obj))
    if entry is None or entry[0] is not obj:
        return
    cls = entry[1]
    if type(obj) is not cls:
        st.rebound[f"{cls.__name__}.__class__"] = 1
        return
    try:
        own = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        own = None
    plan = st.plans.get(cls)
    if plan is None:  # the methods its instances must run through a wrapper
        plan = st.plans[cls] = tuple(m for m in ("forward", "backward") if _expects(st, cls, m))
        if plan and _resolve(cls, "__getattribute__") is not object.__getattribute__:
            st.rebound[f"{cls.__name__}.__getattribute__"] = 1  # its attribute lookup is its own
    ok = st.ok
    for method in plan:
        f = own.get(method) if type(own) is dict else None
        if f is None:
            f = _resolve(cls, method)
        if ok.get(id(f)) is not f:
            if _ours(st, f):
                ok[id(f)] = f  # the harness's own function: once is enough
            else:
                st.rebound[f"{cls.__name__}.{method}"] = 1


def _check_case_end(st: Any) -> None:
    for obj, _ in list(st.instances.values()):
        _check_dispatch(st, obj)
    for (cls, method), wrapper in st.installed.items():
        if cls.__dict__.get(method) is not wrapper:
            st.rebound[f"{cls.__name__}.{method}"] = 1


def _through(attr: object) -> types.FunctionType:
    """A plain function calling what ``instance.<attr>`` gives (``attr`` a descriptor or a
    callable object in a class's dict)."""
    get = getattr(type(attr), "__get__", None)

    def through(self, *args: object, **kwargs: object) -> Opaque:
        f = get(attr, self, type(self)) if get is not None else attr
        return f(*args, **kwargs)
    through.__through__ = attr
    return through
