"""Shared by every check kind: Result, CaseResult, diagnoses, safe access to student
namespaces, and the registry of kinds that ``probe`` and ``run_public`` dispatch through.

Child-safe (standard library + NumPy only): it opens the student bundle
``backprop_checks.py`` and runs in the grading child. The check modules are concatenated
into that bundle (``grader/checks/bundle.py``), so every top-level name here is unique
across ``grader/checks/`` and it imports only ``types`` (the shapes of specs, records
and verdicts) from the package.
A kind registers itself with ``register(Kind(...))`` at the end of its module.
"""
import contextvars
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .types import ErrorInfo, Namespace, Probe, Record, Spec, Verdict

MAX_ELEMENTS = 1_000_000  # any array in a record larger than this is rejected


DIAGNOSES = {
    "missing": ("not defined", "Define it under exactly this name (check for typos or a deleted cell)."),
    "not_implemented": ("still raises NotImplementedError", "Replace the `raise NotImplementedError` with your code."),
    "exception": ("raised an exception", "Run the cell on a small example and read the traceback."),
    "forward_wrong": ("forward value wrong", "Compare forward() with the formula in the notes; backward is not judged until forward is right."),
    "non_finite": ("NaN or inf in the result", "Large inputs overflow exp: use a stable formula (subtract the row maximum before exp, take exp only of -|x|, use log-softmax)."),
    "low_precision": ("values in float32 (or lower) precision", "Your values are float32: compute in float64 (keep NumPy's default float64 arrays; no .astype(np.float32) or dtype=np.float32)."),
    "operand_mutated": ("an operand's value was changed", "Never modify an operand's array in place (x -= ..., x *= ..., np.maximum(x, 0, out=x)); compute into a new array."),
    "grad_shape": ("a grad has the wrong shape", "A gradient always has its value's shape: start from zeros of the value's shape and keep that shape."),
    "bias_not_summed": ("a broadcast operand's grad was not summed", "An operand that NumPy broadcast (a bias (O,) added to (N, O)) gets the sum of the upstream grad over the broadcast axes (unbroadcast)."),
    "matmul_transposed": ("transposed or wrong-axis matmul gradient", "For v = x @ W: x_bar = v_bar @ W.T and W_bar = x.T @ v_bar; check the shapes of both."),
    "upstream_ignored": ("upstream gradient ignored", "Multiply the local derivative by self.grad (the upstream gradient); it is not always ones."),
    "assign_not_accumulate": ("`=` instead of `+=`", "Use += so contributions from every consumer add up."),
    "sign_error": ("gradient has the wrong sign", "Check the sign of the local derivative (e.g. d/dt of (y - t) is -1, log'(x) = +1/x)."),
    "wrong_factor": ("gradient off by a constant factor", "Check the constants: 1/N of a mean, 2 of a square, 1/2 of the MSE."),
    "loss_not_seeded": ("loss.grad not set to ones", "After zeroing every grad, set loss.grad to ones of the loss's shape."),
    "grads_not_zeroed": ("grads not reset to zero", "At the start of Backward set every grad (components, params, inputs) to zeros of its value's shape."),
    "wrong_order": ("components not processed in a valid reverse order", "Call backward() of every component exactly once, each after all of its consumers (reverse creation order works)."),
    "wrong_gradient": ("gradient wrong", "Derive the local derivative again in bar notation and check it against a central difference."),
}


# Runner-level outcomes (no usable probe record); same Result shape, score 0.
RUNNER_OUTCOMES = {
    "timeout": ("The notebook did not finish within the time limit.",
                "Look for an infinite loop or very slow code; training cells should run in seconds."),
    "crashed": ("The process running the notebook crashed.",
                "Run the whole notebook from a fresh kernel (Kernel > Restart & Run All); check memory use, "
                "os._exit and sys.exit."),
    "output_limit": ("The notebook printed too much output.", "Remove prints inside loops before submitting."),
    "protocol_error": ("The grader could not read back your results.",
                       "Make sure your code returns NumPy arrays of numbers; ask a TA if this persists."),
    "not_graded": ("The notebook could not be read.", "Re-download it from Jupyter and submit the .ipynb file."),
}


def describe(code: str | None) -> tuple[str, str]:
    """(plain words, hint) for a diagnosis or runner code; unknown codes in words, no hint."""
    if not code:
        return "", ""
    return DIAGNOSES.get(code) or RUNNER_OUTCOMES.get(code) or (str(code).replace("_", " "), "")


@dataclass(repr=False)
class Result:
    test_id: str
    passed: bool
    score: float
    message: str
    diagnosis: str | None = None
    details: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        """One line: a passing notebook test cell shows this, not the details."""
        verdict = "passed" if self.passed else f"failed ({self.diagnosis})"
        return f"<{self.test_id}: {verdict}, score {self.score:.2f}>"

    def to_json(self) -> Verdict:
        return {"test_id": self.test_id, "passed": bool(self.passed), "score": float(self.score),
                "message": self.message, "diagnosis": self.diagnosis, "details": _jsonable(self.details)}

    @classmethod
    def from_json(cls, d: Verdict | dict[str, Any]) -> "Result":
        return cls(test_id=str(d["test_id"]), passed=bool(d["passed"]), score=float(d["score"]),
                   message=str(d["message"]), diagnosis=d.get("diagnosis"), details=dict(d.get("details") or {}))


def report(result: Result) -> Result:
    """For a notebook test cell: raise ``AssertionError(message)`` unless the check passed."""
    if not result.passed:
        raise AssertionError(result.message)
    return result


def _jsonable(x: Any, depth: int = 0) -> Any:
    """Arrays as lists (small) or a summary; numpy scalars as Python numbers."""
    if depth > 20:
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in x]
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            return None
        if x.size <= 64:
            return _jsonable(x.tolist(), depth + 1)
        return {"shape": list(x.shape), "min": _num(x.min()), "max": _num(x.max())}
    if isinstance(x, (np.generic, float, int, bool)):
        return _num(x)
    if x is None or isinstance(x, str):
        return x
    return str(x)


def _num(v: Any) -> bool | int | float | str:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else repr(v)  # JSON has no NaN/inf


# Where a failed projection asks for the full Jacobian: (reverse step, node) pairs in a loop
# test, True for a component case, the instance's index in a case made of instances.
Localise = list[tuple[int, str]] | bool | int | None


class CaseResult:
    """One case's verdict inside a check (combined into one Result per test)."""

    def __init__(self, passed: bool, message: str = "", diagnosis: str | None = None, details: dict | None = None,
                 localise: Localise = None) -> None:
        self.passed, self.message, self.diagnosis = passed, message, diagnosis
        self.details = details or {}
        self.localise = localise  # set by a failed projection: where to compute the full Jacobian


class _Lazy(dict):
    """Failure details built only when a failure is reported (they are costly per step)."""

    def __init__(self, make: Callable[[], dict]) -> None:
        super().__init__()
        self.make = make


def _fail(diagnosis: str, where: str, what: str, details: dict | None = None,
          localise: Localise = None) -> "CaseResult":
    if isinstance(details, _Lazy):
        details = details.make()
    hint = describe(diagnosis)[1]
    msg = f"{where}: {what}" + (f" {hint}" if hint else "")
    return CaseResult(False, msg, diagnosis, details, localise)


def combine(test_id: str, cases: list["CaseResult"]) -> Result:
    """One Result from per-case verdicts: score is the fraction of cases passed."""
    if not cases:
        return Result(test_id, False, 0.0, "no cases were run", "protocol_error", {})
    passed = sum(c.passed for c in cases)
    first = next((c for c in cases if not c.passed), None)
    if first is None:
        # a passed case may carry a note (a failure charged to another test, say why here)
        notes = "".join(f"; {c.message}" for c in cases if c.message)
        return Result(test_id, True, 1.0, f"all {len(cases)} cases passed{notes}", None, {"cases": len(cases)})
    details = dict(first.details)
    details.update(cases=len(cases), cases_passed=passed)
    extra = f" ({passed} of {len(cases)} cases passed)" if len(cases) > 1 else ""
    return Result(test_id, False, passed / len(cases), first.message + extra, first.diagnosis, details)


class _Missing(Exception):
    pass


def _get(ns: Any, name: str) -> Any:
    if isinstance(ns, dict):
        return ns.get(name)
    return getattr(ns, name, None)


def _need(ns: Any, name: str) -> Any:
    obj = _get(ns, name)
    if obj is None:
        raise _Missing(name)
    return obj


def _err(e: BaseException) -> ErrorInfo:
    try:
        msg = str(e)[:300]
    except Exception:
        msg = "<unprintable>"
    return {"type": "missing" if isinstance(e, _Missing) else type(e).__name__, "message": msg}


def _arr(x: Any) -> np.ndarray | None:
    """A numeric copy of x, or None when x is not numeric data."""
    try:
        a = np.array(x)
    except Exception:
        return None
    if a.dtype.kind not in "biuf" or a.size > MAX_ELEMENTS:
        return None
    return a


# True while ``_quiet`` holds (per thread): floating-point errors are ignored already, so a
# comparison called thousands of times per test need not enter np.errstate itself (which
# costs more than the comparison)
_FP_IGNORED: contextvars.ContextVar[bool] = contextvars.ContextVar("backprop_fp_ignored", default=False)


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        token = _FP_IGNORED.set(True)
        try:
            yield
        finally:
            _FP_IGNORED.reset(token)


@contextmanager
def _graph_lists(ns: Namespace) -> Iterator[None]:
    """Run with the student's graph lists emptied; restore them (same objects) afterwards."""
    saved = {}
    for name in ("components", "params", "inputs"):
        lst = _get(ns, name)
        if isinstance(lst, list):
            saved[name] = (lst, list(lst))
            lst.clear()
    try:
        yield
    finally:
        for name, (lst, items) in saved.items():
            lst[:] = items
            if _get(ns, name) is not lst:
                if isinstance(ns, dict):
                    ns[name] = lst
                else:
                    try:
                        setattr(ns, name, lst)
                    except Exception:
                        pass


# ----------------------------------------------------------------------------------
# Check kinds: the interface every kind module implements, and the registry
# ----------------------------------------------------------------------------------

# Namespace, Spec, Record: ``types.py`` (a record is untrusted until ``records.admit`` took it)


@dataclass(frozen=True)
class Kind:
    """One check kind (suite.toml ``check = "<name>"``), see docs/ARCHITECTURE.md.

    ``specs(test, params, ns=None, classes=None)`` builds the specs of a suite test from its
    visible or hidden parameters (graphs use the test's ``classes``, else ``classes``, else
    the contract classes ``ns`` defines); ``probe(ns, spec)`` runs student code (in the child) and returns a record;
    ``judge(spec, record, expected)`` decides one case; ``numeric_case(ns, spec)`` is the
    public check of one spec (probe + numeric expectation + judge); ``exact(spec,
    reference_record)`` turns the reference's own record into the hidden expectation.
    A kind without ``specs``/``numeric_case``/``exact`` is judged by ``hidden`` alone.
    """

    name: str
    probe: Probe
    judge: Callable[..., "CaseResult"]
    specs: Callable[..., list[Spec]] | None = None
    numeric_case: Callable[[Namespace, Spec], "CaseResult"] | None = None
    exact: Callable[[Spec, Record], dict] | None = None
    graph_lists: bool = False  # probe with the student's graph lists emptied (and restored)


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def probe(ns: Namespace, spec: Spec) -> Record:
    """Run the student's code in ``ns`` on ``spec``; returns JSON data + numeric arrays."""
    kind = KINDS.get(spec.get("check"))
    if kind is None:
        return {"error": {"type": "protocol", "message": f"unknown check {spec.get('check')!r}"}}
    with _quiet():
        try:
            if kind.graph_lists:
                with _graph_lists(ns):
                    return kind.probe(ns, spec)
            return kind.probe(ns, spec)
        except (Exception, SystemExit) as e:
            return {"error": _err(e), "error_at": "probe"}


def _seeds(params: dict) -> list[int]:
    return list(params.get("seeds") or [params.get("seed", 0)])


def run_public(ns: Namespace, test: dict[str, Any], which: str = "visible") -> Result:
    """Run one suite test (a dict as in suite.toml) with the numeric, public expectations."""
    p = dict(test.get(which) or {})
    check, tid = test["check"], test.get("id", test.get("target", "test"))
    kind = KINDS.get(check)
    if kind is None or kind.numeric_case is None or kind.specs is None:
        raise ValueError(f"check {check!r} has no public form; use the notebook's own test")
    with _quiet():
        return combine(tid, [kind.numeric_case(ns, s) for s in kind.specs(test, p, ns=ns)])
