"""Grading checks for backprop-course: probes, numeric gradients, judges, diagnoses.

This file is self-contained (standard library + NumPy only). It is copied verbatim
to students as ``backprop_checks.py`` and sent as source into the grading child, so
it never imports the reference solutions: expectations here come from central
differences of the stated forward formulas (DESIGN.md), never from solution code.

A check is three steps (docs/ARCHITECTURE.md): a *spec* (plain data: operand values,
upstream grads, graphs), a *probe* that runs student code on it and returns plain data
(``probe(ns, spec) -> record``), and a *judge* comparing a record with an *expected*
record and returning a ``Result``. In a notebook the expected record is numeric (this
file); in ``backprop grade`` it comes from the reference (``grader/checks/hidden.py``).

Numeric gradients, float64 throughout
-------------------------------------
* Inputs are drawn from per-class domains away from kinks and singularities: ReLU
  inputs satisfy |x| >= 0.1, Log inputs lie in [0.5, 3], Exp inputs in [-2, 2];
  upstream grads are random normals (never ones), 0-d upstreams are +-[1.3, 2.7].
* Central differences with step H = 1e-6. Truncation error is H^2/6 * |f'''| <= 3e-12
  on these domains (Log at 0.5 has f''' = 16, the worst case); rounding error is about
  eps * M / H = 2.2e-10 * M, M the magnitude of the numbers in the computation.
* Fast path (torch's gradcheck "fast mode"): one random projection per case. With a
  random direction u and the random upstream v, v^T J u from one central difference
  (2 forward evaluations) is compared with sum_i <grad_i, u_i> from the student's
  backward. The per-element Jacobian (2 evaluations per operand element) is computed
  only when that fails, to localise the worst element and to diagnose.
* Tolerance: |got - want| <= RTOL * S + ATOL * (1 + M). RTOL = 1e-5, ATOL = 1e-7,
  S = |want| per element (for a projection: sum_j |v_j (J u)_j|, so cancellation in
  the projected sum cannot tighten it), M = sum|v| * (max|f| + max|x|) for a
  component, max |node value| for a graph. The noise bound above is >= 400x below
  this; every classic bug (sign, factor, missing term, ignored upstream, transposed
  matmul) is an O(|grad|) error. Measured over 300 seeds x 13 classes: the reference's
  worst projection error is 7e-4 of the tolerance; the smallest error of a wrong
  gradient in the mutation corpus is 120x the tolerance. No false failure of the
  reference or the correct corpus variants over 1000 seeds per class, 500 seeds of
  every suite.toml component test (including scale-1000 cases) and 250 per graph.
* Comparisons with the reference (hidden, exact) use RTOL_EXACT = 1e-6,
  ATOL_EXACT = 1e-8 * (1 + max|want|): students' correct but differently written
  formulas agree with the reference to ~1e-13.
* A random projection misses a wrong gradient only if the error is orthogonal to u:
  with Gaussian u the chance that |<e, u>| falls below 1e-5 of its typical size is
  about 1e-5 per case, and the deterministic checks (shape, accumulation, mutation,
  forward) do not depend on it.
"""

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

H = 1e-6
RTOL, ATOL = 1e-5, 1e-7
RTOL_EXACT, ATOL_EXACT = 1e-6, 1e-8
FORWARD_RTOL, FORWARD_ATOL = 1e-6, 1e-9
MAX_ELEMENTS = 1_000_000  # any array in a record larger than this is rejected

# ----------------------------------------------------------------------------------
# Results and diagnoses
# ----------------------------------------------------------------------------------

DIAGNOSES = {
    "missing": ("not defined", "Define it under exactly this name (check for typos or a deleted cell)."),
    "not_implemented": ("still raises NotImplementedError", "Replace the `raise NotImplementedError` with your code."),
    "exception": ("raised an exception", "Run the cell on a small example and read the traceback."),
    "forward_wrong": ("forward value wrong", "Compare forward() with the formula in the notes; backward is not judged until forward is right."),
    "non_finite": ("NaN or inf in the result", "Large inputs overflow exp: use a stable formula (subtract the row maximum before exp, take exp only of -|x|, use log-softmax)."),
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


def describe(code) -> tuple:
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

    def __repr__(self):
        """One line: a passing notebook test cell shows this, not the details."""
        verdict = "passed" if self.passed else f"failed ({self.diagnosis})"
        return f"<{self.test_id}: {verdict}, score {self.score:.2f}>"

    def to_json(self) -> dict:
        return {"test_id": self.test_id, "passed": bool(self.passed), "score": float(self.score),
                "message": self.message, "diagnosis": self.diagnosis, "details": _jsonable(self.details)}

    @classmethod
    def from_json(cls, d) -> "Result":
        return cls(test_id=str(d["test_id"]), passed=bool(d["passed"]), score=float(d["score"]),
                   message=str(d["message"]), diagnosis=d.get("diagnosis"), details=dict(d.get("details") or {}))


def report(result: Result) -> Result:
    """For a notebook test cell: raise ``AssertionError(message)`` unless the check passed."""
    if not result.passed:
        raise AssertionError(result.message)
    return result


def _jsonable(x, depth=0):
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


def _num(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else repr(v)  # JSON has no NaN/inf


class CaseResult:
    """One case's verdict inside a check (combined into one Result per test)."""

    def __init__(self, passed, message="", diagnosis=None, details=None, localise=None):
        self.passed, self.message, self.diagnosis = passed, message, diagnosis
        self.details = details or {}
        self.localise = localise  # set by a failed projection: where to compute the full Jacobian


class _Lazy(dict):
    """Failure details built only when a failure is reported (they are costly per step)."""

    def __init__(self, make):
        super().__init__()
        self.make = make


def _fail(diagnosis, where, what, details=None, localise=None):
    if isinstance(details, _Lazy):
        details = details.make()
    hint = describe(diagnosis)[1]
    msg = f"{where}: {what}" + (f" {hint}" if hint else "")
    return CaseResult(False, msg, diagnosis, details, localise)


def combine(test_id, cases) -> Result:
    """One Result from per-case verdicts: score is the fraction of cases passed."""
    if not cases:
        return Result(test_id, False, 0.0, "no cases were run", "protocol_error", {})
    passed = sum(c.passed for c in cases)
    first = next((c for c in cases if not c.passed), None)
    if first is None:
        return Result(test_id, True, 1.0, f"all {len(cases)} cases passed", None, {"cases": len(cases)})
    details = dict(first.details)
    details.update(cases=len(cases), cases_passed=passed)
    extra = f" ({passed} of {len(cases)} cases passed)" if len(cases) > 1 else ""
    return Result(test_id, False, passed / len(cases), first.message + extra, first.diagnosis, details)


# ----------------------------------------------------------------------------------
# Namespaces, safe copies, errors
# ----------------------------------------------------------------------------------

class _Missing(Exception):
    pass


def _get(ns, name):
    if isinstance(ns, dict):
        return ns.get(name)
    return getattr(ns, name, None)


def _need(ns, name):
    obj = _get(ns, name)
    if obj is None:
        raise _Missing(name)
    return obj


def _err(e) -> dict:
    try:
        msg = str(e)[:300]
    except Exception:
        msg = "<unprintable>"
    return {"type": "missing" if isinstance(e, _Missing) else type(e).__name__, "message": msg}


def _arr(x):
    """A numeric copy of x, or None when x is not numeric data."""
    try:
        a = np.array(x)
    except Exception:
        return None
    if a.dtype.kind not in "biuf" or a.size > MAX_ELEMENTS:
        return None
    return a


@contextmanager
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _graph_lists(ns):
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
# The contract's components: operands, stated forward formulas, input domains
# ----------------------------------------------------------------------------------

OPERANDS = {
    "Add": ("a", "b"), "Mul": ("a", "b"), "Square": ("x",), "Exp": ("x",), "Log": ("x",),
    "Sigmoid": ("x",), "Tanh": ("x",), "ReLU": ("x",), "VDot": ("x", "W"), "Sum": ("x",),
    "Mean": ("x",), "SoftmaxCrossEntropy": ("logits", "labels"), "MSE": ("y", "t"),
}
ELEMENTWISE = ("Add", "Mul", "Square", "Exp", "Log", "Sigmoid", "Tanh", "ReLU")


def _sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * np.asarray(x, dtype=float))  # saturates, never overflows


def _softmax_ce(logits, labels):
    rows = np.arange(logits.shape[0])
    return np.asarray(np.mean(np.logaddexp.reduce(logits, axis=-1) - logits[rows, labels.astype(int)]))


FORMULAS = {  # the forward values stated in DESIGN.md
    "Add": lambda a, b: a + b, "Mul": lambda a, b: a * b, "Square": lambda x: x * x,
    "Exp": np.exp, "Log": np.log, "Sigmoid": _sigmoid, "Tanh": np.tanh,
    "ReLU": lambda x: np.maximum(x, 0.0), "VDot": lambda x, W: x @ W,
    "Sum": lambda x: np.asarray(np.sum(x)), "Mean": lambda x: np.asarray(np.mean(x)),
    "SoftmaxCrossEntropy": _softmax_ce, "MSE": lambda y, t: np.asarray(0.5 * np.mean((y - t) ** 2)),
}

DEFAULT_SHAPES = {
    "Add": [[(4, 3), (4, 3)], [(4, 3), (3,)]], "Mul": [[(4, 3), (4, 3)], [(4, 3), (3,)]],
    "VDot": [[(4, 3), (3, 5)], [(3,), (3, 5)], [(4, 4), (4, 4)]],
    "SoftmaxCrossEntropy": [[(4, 3), (4,)]], "MSE": [[(4, 3), (4, 3)]],
}
STABILITY = ("Sigmoid", "Tanh", "SoftmaxCrossEntropy", "Log")


def _sample(name, shape, rng, domain=None, scale=1.0):
    """Operand values away from the class's kinks and singularities."""
    shape = tuple(shape)
    domain = domain or {"ReLU": "nonzero", "Log": "positive"}.get(name, "real")
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=shape) * scale
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape) * scale
    if name == "Exp":
        return rng.uniform(-2.0, 2.0, size=shape) * min(scale, 1.0)
    if name in ("Sigmoid", "Tanh"):
        return rng.uniform(-3.0, 3.0, size=shape) * scale
    return rng.normal(0.0, 1.0, size=shape) * scale


def _upstream(shape, rng):
    if tuple(shape) == ():
        return np.asarray(rng.choice([-1.0, 1.0]) * rng.uniform(1.3, 2.7))
    return rng.normal(0.0, 1.0, size=shape)


def _is_shape(s):
    return isinstance(s, (list, tuple)) and all(isinstance(i, (int, np.integer)) for i in s)


def _normalise_cases(name, shapes):
    """``shapes`` is one case (a list of operand shapes) or a list of cases."""
    if shapes is None:
        return [[tuple(s) for s in case] for case in DEFAULT_SHAPES.get(name, [[(4, 3)]])]
    shapes = list(shapes)
    cases = [shapes] if shapes and _is_shape(shapes[0]) else shapes
    out = []
    for case in cases:
        case = [tuple(int(i) for i in s) for s in case]
        if name == "SoftmaxCrossEntropy" and len(case) == 1:
            case.append((case[0][0],))
        out.append(case)
    return out


def _stability_operands(name, case):
    big = np.array([-1000.0, 1000.0, -50.0, 50.0, 0.3, -0.3, 0.0])
    if name == "SoftmaxCrossEntropy":
        return [np.array([[-1000.0, 1000.0, 0.0], [1000.0, -1000.0, 999.0], [3.0, -1000.0, 1000.0]]),
                np.array([0, 1, 1], dtype=np.int64)]
    shape = case[0]
    n = int(np.prod(shape))
    if name == "Log":
        vals = np.resize(np.array([1e300, 1e-300, 7.0, 1e5]), n)
    else:
        vals = np.resize(big, n) if n > 1 else np.array([1000.0])
    return [vals.reshape(shape)]


def component_specs(name, shapes=None, seed=0, scales=None, domain=None, labels=None) -> list:
    """Specs for one component class: one per case (``shapes``), seeded.

    ``scales`` (one per case) multiplies the operand values (1000 probes stability),
    ``domain`` ("real", "positive", "nonzero") overrides the class's input domain,
    ``labels`` lists the operands that are integer class labels. Sigmoid, Tanh, Log and
    SoftmaxCrossEntropy get a forward-only large-input case unless a scale >= 100 is given.
    """
    rng = np.random.default_rng(seed)
    cases = _normalise_cases(name, shapes)
    scales = list(scales) if scales is not None else [1.0] * len(cases)
    labels = list(labels) if labels is not None else ([1] if name == "SoftmaxCrossEntropy" else [])
    specs = []
    for i, case in enumerate(cases):
        scale = float(scales[i]) if i < len(scales) else 1.0
        ops = [_sample(name, s, rng, domain, scale) for s in case]
        if name == "SoftmaxCrossEntropy" and 0 not in labels and scale == 1.0:
            ops[0] = rng.normal(0.0, 2.0, size=case[0])
        for k in labels:
            ops[k] = rng.integers(0, case[0][-1], size=case[k]).astype(np.int64)
        with _quiet():
            out_shape = np.shape(FORMULAS[name](*ops)) if name in FORMULAS else np.shape(ops[0])
        specs.append({"check": "component", "target": name, "case": i, "operands": ops, "labels": labels,
                      "upstream": _upstream(out_shape, rng),
                      "prior": [rng.normal(0.0, 1.0, size=np.shape(o)) for o in ops],
                      "u": [rng.normal(size=np.shape(o)) for o in ops]})
    if name in STABILITY and max(scales, default=1.0) < 100 and cases:
        specs.append({"check": "component", "target": name, "case": len(specs), "labels": labels,
                      "operands": _stability_operands(name, cases[0]), "forward_only": True})
    return specs


# ----------------------------------------------------------------------------------
# Probes: run student code on a spec, return plain data (never decide)
# ----------------------------------------------------------------------------------

class _Leaf:
    """An operand node for probing one component: ``value`` and ``grad``, nothing else."""

    def __init__(self, value):
        self.value = value
        self.grad = None


def probe(ns, spec) -> dict:
    """Run the student's code in ``ns`` on ``spec``; returns JSON data + numeric arrays."""
    kind = spec.get("check")
    fn = _PROBES.get(kind)
    if fn is None:
        return {"error": {"type": "protocol", "message": f"unknown check {kind!r}"}}
    with _quiet():
        try:
            if kind in ("component", "backward_loop"):
                with _graph_lists(ns):
                    return fn(ns, spec)
            return fn(ns, spec)
        except (Exception, SystemExit) as e:
            return {"error": _err(e), "error_at": "probe"}


def _probe_component(ns, spec):
    rec = {}
    stage = "lookup"
    try:
        cls = _need(ns, spec["target"])
        ops = [np.array(a) for a in spec["operands"]]
        leaves = [_Leaf(a.copy()) for a in ops]
        stage = "construct"
        c = cls(*leaves)
        stage = "forward"
        c.forward()
        rec["value"] = _arr(getattr(c, "value", None))
        rec["operands_after_forward"] = [_arr(leaf.value) for leaf in leaves]
        if spec.get("forward_only"):
            return rec
        for leaf, a in zip(leaves, ops):  # an operand changed by forward is restored: judge backward on the spec's values
            leaf.value = a.copy()
        stage = "backward"
        upstream = np.array(spec["upstream"], dtype=float)
        runs = (("grads", upstream, None), ("grads_prior", upstream, spec["prior"]),
                ("grads_ones", np.ones_like(upstream), None))
        for key, up, prior in runs:
            for i, leaf in enumerate(leaves):
                leaf.value = ops[i].copy()
                leaf.grad = (np.zeros(ops[i].shape) if prior is None else np.array(prior[i], dtype=float))
            c.grad = up.copy()
            c.backward()
            rec[key] = [_arr(leaf.grad) for leaf in leaves]
            if key == "grads":
                rec["operands_after_backward"] = [_arr(leaf.value) for leaf in leaves]
    except (Exception, SystemExit) as e:
        rec["error"] = _err(e)
        rec["error_at"] = stage
    return rec


# ----------------------------------------------------------------------------------
# Comparing arrays
# ----------------------------------------------------------------------------------

def _valid(a, shape=None):
    """Reason why ``a`` is not an acceptable numeric array (None when it is)."""
    if not isinstance(a, np.ndarray):
        return "is not a NumPy array of numbers"
    if a.dtype.kind not in "biuf" or a.dtype.hasobject:
        return f"has dtype {a.dtype}, not a number type"
    if a.size > MAX_ELEMENTS:
        return "is too large"
    if shape is not None and a.shape != tuple(shape):
        return f"has shape {a.shape}, expected {tuple(shape)}"
    return None


def _close(got, want, rtol, atol):
    # errstate alone silences NumPy's floating-point warnings; _quiet's catch_warnings
    # costs more than the comparison, and judges call this thousands of times
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(got - want) <= atol + rtol * np.abs(want)))


def _errors(got, want) -> dict:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    with _quiet():  # nanmax of an all-NaN diff warns through `warnings`, not errstate
        diff = np.abs(got - want)
        rel = diff / np.maximum(np.abs(want), 1e-12)
        max_abs = _num(np.nanmax(diff)) if diff.size else 0.0
        max_rel = _num(np.nanmax(rel)) if rel.size else 0.0
    flat = int(np.nanargmax(diff)) if diff.size and not np.all(np.isnan(diff)) else 0
    idx = tuple(int(i) for i in np.unravel_index(flat, diff.shape)) if diff.ndim else ()
    return {"max_abs_err": max_abs, "max_rel_err": max_rel,
            "worst_index": list(idx), "expected_at_worst": _num(want[idx]) if want.size else None,
            "got_at_worst": _num(got[idx]) if got.size else None,
            "expected": _jsonable(want), "got": _jsonable(got)}


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _describe(err):
    idx = tuple(err["worst_index"])
    at = f" at index {idx}" if idx else ""
    return (f"expected {_fmt(err['expected_at_worst'])}, got {_fmt(err['got_at_worst'])}{at} "
            f"(max abs error {_fmt(err['max_abs_err'])}, max rel error {_fmt(err['max_rel_err'])})")


def classify(got, want, rtol, atol, want_ones=None, is_matmul=False):
    """The most specific diagnosis for a wrong gradient contribution (got != want)."""
    if want_ones is not None and not _close(want_ones, want, rtol, atol) and _close(got, want_ones, rtol, atol):
        return "upstream_ignored", "computed as if the upstream gradient self.grad were ones"
    if np.any(want != 0) and _close(got, -want, rtol, atol):
        return "sign_error", "has the opposite sign of the correct gradient"
    denom = float(np.sum(want * want))
    if denom > 0:
        r = float(np.sum(got * want)) / denom
        # one number is always a multiple of another: then only a "round" factor counts
        nice = np.size(want) > 1 or any(abs(abs(q) - f) < 1e-9 for q in (r, 1 / r if r else 0) for f in (2.0, 4.0))
        if nice and abs(r) > 1e-9 and abs(r - 1) > 1e-3 and _close(got, r * want, rtol, atol):
            return "wrong_factor", f"is the correct gradient times {r:.4g}"
    if is_matmul:
        return "matmul_transposed", "does not match x_bar = v_bar @ W.T / W_bar = x.T @ v_bar"
    return "wrong_gradient", "is wrong"


def _error_case(rec, where, component=None, broadcast=False):
    """A failing case for a probe that raised; ``details["component"]`` names the class at fault
    when it is known (for a missing name, the name itself), so reports can place it."""
    err = rec.get("error")
    if not isinstance(err, dict):
        return _fail("protocol_error", where, "the probe record is malformed.")
    etype, msg = str(err.get("type", "")), str(err.get("message", ""))[:200]
    stage = str(rec.get("error_at", ""))
    at = {"component": component} if component else {}
    if etype == "missing":
        return _fail("missing", where, f"`{msg}` is not defined.", {"missing": msg, "component": msg})
    if etype == "NotImplementedError":
        return _fail("not_implemented", where + (f" ({stage})" if stage in ("forward", "backward") else ""),
                     "raises NotImplementedError.", at)
    if stage == "backward" and etype == "ValueError":
        if component == "VDot" and ("mismatch" in msg or "align" in msg or "shape" in msg):
            return _fail("matmul_transposed", where, f"backward raised ValueError: {msg}.", at)
        if broadcast and "non-broadcastable output" in msg:  # += of an unsummed grad into a broadcast operand
            return _fail("bias_not_summed", where, f"backward raised ValueError: {msg}.", at)
    return _fail("exception", where + (f" ({stage})" if stage else ""), f"raised {etype}: {msg}", at)


# ----------------------------------------------------------------------------------
# Component judge
# ----------------------------------------------------------------------------------

def _shapes_text(spec):
    return ", ".join(str(tuple(np.shape(o))) for o in spec["operands"])


def _case_text(spec):
    return f"case {spec.get('case', 0) + 1}, operand shapes {_shapes_text(spec)}"


def judge_component(spec, record, expected) -> CaseResult:
    """Judge one component case. ``expected``: {"value", and either "grads"/"grads_ones"
    (full, per operand) or "proj" (u, want, scale), "rtol", "atol"}."""
    name = spec["target"]
    names = OPERANDS.get(name, tuple(f"operand{i}" for i in range(len(spec["operands"]))))
    where = f"{name} ({_case_text(spec)})"
    if not isinstance(record, dict):
        return _fail("protocol_error", where, "the probe record is not a dict.")
    try:
        return _judge_component(spec, record, expected, name, names, where)
    except Exception as e:  # a malformed record must fail, never crash the grader
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def _mutation_case(rec, stage, ops, names, name, spec, where):
    """The failing case if ``stage`` (forward or backward) changed an operand's value, else None."""
    after = rec.get(f"operands_after_{stage}")
    if not isinstance(after, list) or len(after) != len(ops):
        return _fail("protocol_error", where, "operand values missing from the record.")
    for k, (a, o) in enumerate(zip(after, ops)):
        if _valid(a, o.shape) or not np.array_equal(a, o):
            return _fail("operand_mutated", f"{name}.{stage} ({_case_text(spec)})", f"changed the value of its operand {names[k]}.",
                         {"component": name, "operand": names[k]})
    return None


def _judge_component(spec, rec, exp, name, names, where):
    labels = list(spec.get("labels") or [])
    ops = [np.asarray(o) for o in spec["operands"]]
    if "error" in rec and rec.get("error_at") in ("lookup", "construct", "forward", "probe", None):
        return _error_case(rec, where, name)
    want_value = np.asarray(exp["value"])
    value = rec.get("value")
    bad = _valid(value)
    if bad:
        return _fail("forward_wrong", f"{name}.forward ({_case_text(spec)})", f"self.value {bad}.")
    if value.shape != want_value.shape:
        return _fail("forward_wrong", f"{name}.forward ({_case_text(spec)})",
                     f"self.value has shape {value.shape}, expected {want_value.shape}.",
                     {"component": name, "expected_shape": list(want_value.shape), "got_shape": list(value.shape)})
    if value.dtype.kind != "f":
        return _fail("forward_wrong", f"{name}.forward ({_case_text(spec)})", f"self.value has dtype {value.dtype}, expected a float dtype.")
    if np.all(np.isfinite(want_value)) and not np.all(np.isfinite(value)):
        return _fail("non_finite", f"{name}.forward ({_case_text(spec)})", "self.value contains NaN or inf where the exact value is finite.",
                     {"component": name, **_errors(value, want_value)})
    mutated = _mutation_case(rec, "forward", ops, names, name, spec, where)
    if mutated:
        return mutated
    if not _close(value, want_value, FORWARD_RTOL, FORWARD_ATOL * (1 + np.max(np.abs(want_value), initial=0))):
        err = _errors(value, want_value)
        return _fail("forward_wrong", f"{name}.forward ({_case_text(spec)})", f"value wrong: {_describe(err)}.",
                     {"component": name, **err})
    if spec.get("forward_only"):
        return CaseResult(True)
    if "error" in rec:
        shapes = {o.shape for k, o in enumerate(ops) if k not in labels}
        return _error_case(rec, f"{name}.backward ({_case_text(spec)})", name, broadcast=len(shapes) > 1 and name != "VDot")
    rtol, atol = exp["rtol"], exp["atol"]
    grads = rec.get("grads")
    if not isinstance(grads, list) or len(grads) != len(ops):
        return _fail("protocol_error", where, "grads missing from the record.")
    out_shape = want_value.shape
    for k, (g, o) in enumerate(zip(grads, ops)):
        if k in labels:
            continue
        w = f"{name}.backward ({_case_text(spec)}), operand {names[k]}"
        bad = _valid(g)
        if bad:
            return _fail("exception" if g is None else "grad_shape", w, f"{names[k]}.grad {bad}.")
        if g.shape != o.shape:
            d = {"component": name, "operand": names[k], "expected_shape": list(o.shape), "got_shape": list(g.shape)}
            if name == "VDot":
                return _fail("matmul_transposed", w, f"{names[k]}.grad has shape {g.shape}, expected {o.shape}.", d)
            if g.shape == out_shape and o.shape != out_shape:
                return _fail("bias_not_summed", w, f"{names[k]}.grad has the broadcast shape {g.shape}, expected {o.shape}.", d)
            return _fail("grad_shape", w, f"{names[k]}.grad has shape {g.shape}, expected {o.shape}.", d)
        if not np.all(np.isfinite(g)):
            return _fail("non_finite", w, f"{names[k]}.grad contains NaN or inf.", {"component": name, "operand": names[k]})
    if "proj" in exp:  # fast path: one random projection
        p = exp["proj"]
        got = sum(float(np.sum(g * u)) for k, (g, u) in enumerate(zip(grads, p["u"])) if u is not None)
        if abs(got - p["want"]) > rtol * p["scale"] + atol:
            return _fail("wrong_gradient", f"{name}.backward ({_case_text(spec)})",
                         f"the random projection v^T J u is {got:.6g}, central differences give {p['want']:.6g}.",
                         {"component": name}, localise=True)
    else:
        for k, (g, o) in enumerate(zip(grads, ops)):
            if k in labels:
                continue
            want = np.asarray(exp["grads"][k])
            if not _close(g, want, rtol, atol):
                ones = exp.get("grads_ones")
                code, what = classify(g, want, rtol, atol, None if ones is None else np.asarray(ones[k]),
                                      is_matmul=name == "VDot")
                err = _errors(g, want)
                return _fail(code, f"{name}.backward ({_case_text(spec)}), operand {names[k]}",
                             f"{names[k]}.grad {what}: {_describe(err)}.",
                             {"component": name, "operand": names[k], "case": spec.get("case", 0), **err})
    mutated = _mutation_case(rec, "backward", ops, names, name, spec, where)
    if mutated:
        return mutated
    prior_run = rec.get("grads_prior")
    if not isinstance(prior_run, list) or len(prior_run) != len(ops):
        return _fail("protocol_error", where, "accumulation run missing from the record.")
    for k, (g2, g, p) in enumerate(zip(prior_run, grads, spec["prior"])):
        if k in labels:
            continue
        w = f"{name}.backward ({_case_text(spec)}), operand {names[k]}"
        p = np.asarray(p)
        if _valid(g2, p.shape):
            return _fail("grad_shape", w, f"with a non-zero {names[k]}.grad already present, the grad {_valid(g2, p.shape)}.")
        scale = atol + RTOL_EXACT * (np.abs(g) + np.abs(p))
        if not np.all(np.abs(g2 - (p + g)) <= scale):
            if np.all(np.abs(g2 - g) <= scale):
                return _fail("assign_not_accumulate", w,
                             f"{names[k]}.grad was overwritten — the value left by another consumer of {names[k]} was lost.",
                             {"component": name, "operand": names[k]})
            return _fail("wrong_gradient", w, f"with a non-zero {names[k]}.grad already present, the result is not old grad + contribution.",
                         {"component": name, "operand": names[k]})
    return CaseResult(True)


# ----------------------------------------------------------------------------------
# Numeric expectations for components
# ----------------------------------------------------------------------------------

class Counter:
    """Counts forward evaluations (for the benchmark)."""

    def __init__(self):
        self.n = 0


def _component_noise(v, f, ops):
    xs = max((float(np.max(np.abs(o), initial=0)) for o in ops), default=0.0)
    return float(np.sum(np.abs(v))) * (float(np.max(np.abs(f), initial=0)) + xs)


def numeric_component_expectation(spec, full=False, counter=None) -> dict:
    """Expected record from central differences of the stated forward formula."""
    name = spec["target"]
    labels = list(spec.get("labels") or [])
    f = FORMULAS[name]
    ops = [np.asarray(o) for o in spec["operands"]]
    with _quiet():
        value = np.asarray(f(*ops))
    exp = {"value": value, "rtol": RTOL}
    if spec.get("forward_only"):
        exp["atol"] = 0.0
        return exp
    v = np.asarray(spec["upstream"], dtype=float)
    exp["atol"] = ATOL * (1 + _component_noise(v, value, ops))
    diff = [k for k in range(len(ops)) if k not in labels]

    def at(shifted):
        if counter is not None:
            counter.n += 1
        return np.asarray(f(*shifted), dtype=float)

    if not full:
        u = [np.asarray(spec["u"][k], dtype=float) if k in diff else None for k in range(len(ops))]
        plus = [o + H * u[k] if k in diff else o for k, o in enumerate(ops)]
        minus = [o - H * u[k] if k in diff else o for k, o in enumerate(ops)]
        d = (at(plus) - at(minus)) / (2 * H)
        exp["proj"] = {"u": u, "want": float(np.sum(v * d)), "scale": float(np.sum(np.abs(v * d)))}
        return exp
    grads, grads_ones = [], []
    for k, o in enumerate(ops):
        if k not in diff:
            grads.append(np.zeros(o.shape))
            grads_ones.append(np.zeros(o.shape))
            continue
        g, g1 = np.zeros(o.shape), np.zeros(o.shape)
        for j in np.ndindex(o.shape):
            shifted = [x.astype(float) if i == k else x for i, x in enumerate(ops)]
            base = shifted[k][j]
            shifted[k][j] = base + H
            fp = at(shifted)
            shifted[k][j] = base - H
            fm = at(shifted)
            dj = (fp - fm) / (2 * H)
            g[j], g1[j] = np.sum(v * dj), np.sum(dj)
        grads.append(g)
        grads_ones.append(g1)
    exp["grads"], exp["grads_ones"] = grads, grads_ones
    return exp


def check_component(ns, name, shapes=None, seed=0, scales=None, domain=None, labels=None,
                    test_id=None) -> Result:
    """Numeric check of one component class: ``check_component(ns, "Sigmoid", shapes=[(4, 3)], seed=0)``."""
    specs = component_specs(name, shapes, seed, scales, domain, labels)
    cases = [numeric_component_case(ns, s) for s in specs]
    return combine(test_id or name, cases)


def numeric_component_case(ns, spec, counter=None) -> CaseResult:
    record = probe(ns, spec)
    with _quiet():
        verdict = judge_component(spec, record, numeric_component_expectation(spec, counter=counter))
        if verdict.localise:
            verdict = judge_component(spec, record, numeric_component_expectation(spec, True, counter))
    return verdict


# ----------------------------------------------------------------------------------
# Graphs
# ----------------------------------------------------------------------------------

ALL_CLASSES = tuple(OPERANDS)


def _node(name, kind, *args):
    return {"name": name, "kind": kind, "args": list(args)}


def _graph(nodes, values, loss):
    return {"nodes": nodes, "values": {k: np.asarray(v) for k, v in values.items()}, "loss": loss}


def _needs(classes, *names):
    missing = [n for n in names if n not in classes]
    if missing:
        raise ValueError(f"this graph needs {missing}, which the assignment does not have")


def _g_x_times_x_plus_1(rng, classes):
    _needs(classes, "Add", "Mul")
    return _graph([_node("x", "Input"), _node("one", "Input"), _node("u", "Add", "x", "one"),
                   _node("y", "Mul", "x", "u")], {"x": 17.0, "one": 1.0}, "y")


def _g_relu_affine(rng, classes):
    _needs(classes, "Mul", "Add", "ReLU")
    return _graph([_node("W", "Parameter"), _node("x", "Input"), _node("b", "Parameter"),
                   _node("Wx", "Mul", "W", "x"), _node("z", "Add", "Wx", "b"), _node("y", "ReLU", "z")],
                  {"W": 2.0, "x": 3.0, "b": 1.0}, "y")


def _g_mlp2(rng, classes):
    act = "ReLU" if "ReLU" in classes else "Tanh"
    _needs(classes, "VDot", "Add", act, "SoftmaxCrossEntropy")
    N, I, Hd, C = 4, 3, 5, 3
    for _ in range(100):  # keep pre-activations away from the ReLU kink
        vals = {"x": rng.normal(size=(N, I)), "labels": rng.integers(0, C, size=N).astype(np.int64),
                "W1": rng.normal(0, 0.8, size=(I, Hd)), "b1": rng.normal(0, 0.5, size=Hd),
                "W2": rng.normal(0, 0.8, size=(Hd, C)), "b2": rng.normal(0, 0.5, size=C)}
        if np.min(np.abs(vals["x"] @ vals["W1"] + vals["b1"])) > 0.05:
            break
    nodes = [_node("x", "Input"), _node("labels", "Input"), _node("W1", "Parameter"), _node("b1", "Parameter"),
             _node("W2", "Parameter"), _node("b2", "Parameter"),
             _node("h1", "VDot", "x", "W1"), _node("a1", "Add", "h1", "b1"), _node("r1", act, "a1"),
             _node("h2", "VDot", "r1", "W2"), _node("logits", "Add", "h2", "b2"),
             _node("loss", "SoftmaxCrossEntropy", "logits", "labels")]
    return _graph(nodes, vals, "loss")


def _g_shared_subexpr(rng, classes):
    _needs(classes, "Sigmoid", "Square", "Mul", "Add")
    vector = "Sum" in classes
    x = rng.uniform(-2, 2, size=(3,) if vector else ())
    nodes = [_node("x", "Input"), _node("a", "Sigmoid", "x"), _node("b", "Square", "a"), _node("c", "Mul", "a", "x"),
             _node("d", "Add", "b", "c"), _node("e", "Add", "d", "x"), _node("m", "Mul", "e", "c")]
    if vector:
        nodes.append(_node("loss", "Sum", "m"))
    return _graph(nodes, {"x": x}, "loss" if vector else "m")


def _g_random(rng, classes, n):
    kinds = [k for k in ELEMENTWISE if k in classes]
    if not kinds:
        raise ValueError("random graphs need elementwise classes")
    reduce = next((k for k in ("Sum", "Mean") if k in classes), None)
    shape = (2, 3) if reduce else ()
    nodes, vals = [], {}
    for name, kind in (("x0", "Input"), ("x1", "Input"), ("w", "Parameter")):
        nodes.append(_node(name, kind))
        vals[name] = rng.uniform(-1.5, 1.5, size=shape)
    if reduce and ("Add" in kinds or "Mul" in kinds):
        nodes.append(_node("bias", "Parameter"))
        vals["bias"] = rng.uniform(-1, 1, size=(3,))
    pool = [n["name"] for n in nodes]
    consumed = set()
    ok = {"Log": lambda a: np.min(a) > 0.2, "ReLU": lambda a: np.min(np.abs(a)) > 0.05, "Exp": lambda a: np.max(a) < 2.5}
    made = 0
    for _ in range(20 * n):
        if made == n:
            break
        kind = kinds[rng.integers(len(kinds))]
        arity = len(OPERANDS[kind])
        args = [pool[i] for i in rng.integers(len(pool), size=arity)]
        if arity == 2 and args[0] == args[1] and rng.random() < 0.7:
            continue
        if kind in ok and not ok[kind](vals[args[0]]):
            continue
        with _quiet():
            value = FORMULAS[kind](*[vals[a] for a in args])
        if not np.all(np.isfinite(value)) or np.max(np.abs(value)) > 20:
            continue
        name = f"n{made}"
        nodes.append(_node(name, kind, *args))
        vals[name] = value
        pool.append(name)
        consumed.update(args)
        made += 1
    join = "Add" if "Add" in kinds else "Mul"
    dangling = [n["name"] for n in nodes if n["kind"] not in ("Input", "Parameter") and n["name"] not in consumed]
    last = dangling[0]
    for i, other in enumerate(dangling[1:]):
        name = f"j{i}"
        nodes.append(_node(name, join, last, other))
        vals[name] = FORMULAS[join](vals[last], vals[other])
        last = name
    if reduce:
        nodes.append(_node("loss", reduce, last))
        last = "loss"
    return _graph(nodes, {k: vals[k] for k in vals if k in ("x0", "x1", "w", "bias")}, last)


GRAPHS = {"x_times_x_plus_1": _g_x_times_x_plus_1, "relu_affine": _g_relu_affine, "mlp2": _g_mlp2,
          "shared_subexpr": _g_shared_subexpr}


def build_graph(graph, seed=0, classes=None) -> dict:
    """A named graph as data: nodes (name, kind, args) in creation order, leaf values, loss."""
    classes = tuple(classes or ALL_CLASSES)
    rng = np.random.default_rng(seed)
    if graph.startswith("random:"):
        return _g_random(rng, classes, int(graph.split(":", 1)[1]))
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}")
    return GRAPHS[graph](rng, classes)


def graph_spec(graph, seed=0, classes=None) -> dict:
    g = build_graph(graph, seed, classes)
    rng = np.random.default_rng([seed, 1])
    values = evaluate_graph(g)
    stale = {n["name"]: rng.normal(size=np.shape(values[n["name"]])) + 0.5 for n in g["nodes"]}
    return {"check": "backward_loop", "graph": graph, **g, "stale": stale}


def evaluate_graph(g, values=None) -> dict:
    """Every node's value by the stated formulas."""
    vals = dict(values or g["values"])
    with _quiet():
        for n in g["nodes"]:
            if n["kind"] not in ("Input", "Parameter"):
                vals[n["name"]] = np.asarray(FORMULAS[n["kind"]](*[vals[a] for a in n["args"]]))
    return vals


def _components(g):
    return [n for n in g["nodes"] if n["kind"] not in ("Input", "Parameter")]


def _judged(g):
    """Nodes whose grad the invariant constrains (label inputs of SoftmaxCrossEntropy receive none)."""
    labels = {n["args"][1] for n in g["nodes"] if n["kind"] == "SoftmaxCrossEntropy"}
    return [n["name"] for n in g["nodes"] if n["name"] not in labels]


def _changed(now: dict, last: dict) -> dict:
    """The grads in snapshot ``now`` that differ from ``last``.

    A reverse step changes only its component's operands' grads, so a step records just
    those (the judge rebuilds each full snapshot from the one before): sending every node's
    grad after every step made the records of a loop test mostly repeats.
    """
    def same(a, b):
        if a is None or b is None:
            return a is b
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return {name: g for name, g in now.items() if name not in last or not same(g, last[name])}


def _probe_backward(ns, spec):
    rec = {"steps": []}
    stage = "lookup"
    state = {"depth": 0, "pre": None, "current": None, "steps": rec["steps"]}
    wrapped = {}
    try:
        Input, Parameter, Backward = _need(ns, "Input"), _need(ns, "Parameter"), _need(ns, "Backward")
        classes = {n["kind"]: _need(ns, n["kind"]) for n in _components(spec)}
        stage = "construct"
        objs = {}
        for n in spec["nodes"]:
            if n["kind"] == "Input":
                o = Input()
                o.set(np.array(spec["values"][n["name"]]))
            elif n["kind"] == "Parameter":
                o = Parameter(np.array(spec["values"][n["name"]], dtype=float))
            else:
                o = classes[n["kind"]](*[objs[a] for a in n["args"]])
            objs[n["name"]] = o
        cnodes = _components(spec)
        comps = [objs[n["name"]] for n in cnodes]
        index = {id(c): i for i, c in enumerate(comps)}
        stage = "forward"
        rec["forward_steps"] = []
        for i, c in enumerate(comps):  # each value right after its forward, and its operands' values
            state["current"] = i
            c.forward()
            rec["forward_steps"].append({"value": _arr(getattr(c, "value", None)),
                                         "args": {a: _arr(objs[a].value) for a in cnodes[i]["args"]}})
        state["current"] = None
        rec["values"] = {name: _arr(getattr(o, "value", None)) for name, o in objs.items()}
        for name, o in objs.items():  # stale grads, as if left over from an earlier iteration
            o.grad = np.array(spec["stale"][name])
        limit = 4 * len(comps) + 4

        def snapshot():
            return {name: _arr(getattr(o, "grad", None)) for name, o in objs.items()}

        def wrap(orig):
            def backward(self, *args, **kwargs):
                if state["depth"] or id(self) not in index:  # super().backward() or a foreign node
                    return orig(self, *args, **kwargs)
                if state["pre"] is None:
                    state["pre"] = state["last"] = snapshot()
                state["current"] = index[id(self)]
                upstream = _arr(getattr(self, "grad", None))
                state["depth"] += 1
                try:
                    out = orig(self, *args, **kwargs)
                finally:
                    state["depth"] -= 1
                if len(state["steps"]) < limit:
                    now = snapshot()
                    state["steps"].append({"component": index[id(self)], "upstream": upstream,
                                           "grads": _changed(now, state["last"]),
                                           "args": {a: _arr(objs[a].value) for a in cnodes[index[id(self)]]["args"]}})
                    state["last"] = now
                else:
                    rec["truncated"] = True
                state["current"] = None
                return out
            return backward

        for c in comps:  # wrap every class that defines backward, once, in the classes' MROs
            for cls in type(c).__mro__:
                f = cls.__dict__.get("backward")
                if cls not in wrapped and callable(f) and not isinstance(f, (staticmethod, classmethod)):
                    wrapped[cls] = f
                    cls.backward = wrap(f)
        stage = "backward"
        Backward(objs[spec["loss"]])
        rec["pre"] = state["pre"]
        rec["final"] = snapshot()
        stage = "backward2"
        state.update(pre=None, steps=[])
        Backward(objs[spec["loss"]])
        rec["final2"] = snapshot()
        rec["steps2"] = [s["component"] for s in state["steps"]]
    except (Exception, SystemExit) as e:
        rec["error"] = _err(e)
        rec["error_at"] = stage
        rec["error_component"] = state["current"]
        if stage == "backward":
            rec["pre"] = state["pre"]
    finally:
        for cls, f in wrapped.items():
            cls.backward = f
    return rec


def _consumers(g):
    comps = _components(g)
    pos = {n["name"]: i for i, n in enumerate(comps)}
    cons = {i: set() for i in range(len(comps))}
    for i, n in enumerate(comps):
        for a in n["args"]:
            if a in pos:
                cons[pos[a]].add(i)
    return cons


def record_order(record) -> list:
    """The component indices processed, from an untrusted record (ints only, else [])."""
    steps = record.get("steps") if isinstance(record, dict) else None
    if not isinstance(steps, list):
        return []
    out = []
    for s in steps:
        c = s.get("component") if isinstance(s, dict) else None
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            out.append(int(c))
        else:
            break
    return out


def valid_prefix(g, order):
    """(length of the longest valid reverse-topological prefix, reason it stops or None)."""
    comps = _components(g)
    cons = _consumers(g)
    done = set()
    for k, i in enumerate(order):
        if not 0 <= i < len(comps):
            return k, "processed an unknown component"
        if i in done:
            return k, f"processed {comps[i]['kind']} `{comps[i]['name']}` a second time"
        waiting = [comps[j] for j in cons[i] if j not in done]
        if waiting:
            return k, (f"processed {comps[i]['kind']} `{comps[i]['name']}` before its consumer "
                       f"{waiting[0]['kind']} `{waiting[0]['name']}`")
        done.add(i)
    return len(order), None


def _loss_of(g, values, S, node, new):
    """The loss of the program made of the components S, with ``node``'s value replaced."""
    vals = dict(values)
    vals[node] = new
    changed = {node}
    for i, n in enumerate(_components(g)):
        if i in S and any(a in changed for a in n["args"]):
            vals[n["name"]] = FORMULAS[n["kind"]](*[vals[a] for a in n["args"]])
            changed.add(n["name"])
    return float(np.sum(vals[g["loss"]]))


def numeric_backward_expectation(spec, order, counter=None, full_at=()) -> dict:
    """Expected invariant after each step of the (valid prefix of the) student's order.

    Each entry is a projection {"u", "want", "scale"} except at (step, node) in
    ``full_at``: there the full gradient, and the processed component's local
    contribution with upstream ones ("ones"), to localise and diagnose.
    """
    values = evaluate_graph(spec)
    comps = _components(spec)
    n_ok, _ = valid_prefix(spec, order)
    M = max(float(np.max(np.abs(v), initial=0)) for v in values.values())
    exp = {"values": {c["name"]: values[c["name"]] for c in comps}, "rtol": RTOL, "atol": ATOL * (1 + M),
           "steps": [], "ones": {}}
    rng = np.random.default_rng(7)
    judged = _judged(spec)
    full_at = set(full_at)

    def loss(S, node, new):
        if counter is not None:
            counter.n += 1
        return _loss_of(spec, values, S, node, new)

    with _quiet():
        us = {name: rng.normal(size=np.shape(values[name])) for name in judged}
        entry = {}
        for k in range(n_ok):
            S = set(order[:k + 1])
            # Only the operands of the component just processed can change their
            # d loss_S / d v (a longer path would go through an unprocessed node): the
            # other entries carry over from the previous step.
            fresh = set(judged) if k == 0 else set(comps[order[k]]["args"])
            fresh |= {name for (kk, name) in full_at if kk == k}
            entry = dict(entry)
            for name in judged:
                if name not in fresh:
                    continue
                x = np.asarray(values[name], dtype=float)
                if (k, name) in full_at:
                    g = np.zeros(x.shape)
                    for j in np.ndindex(x.shape):
                        xp, xm = x.copy(), x.copy()
                        xp[j] += H
                        xm[j] -= H
                        g[j] = (loss(S, name, xp) - loss(S, name, xm)) / (2 * H)
                    entry[name] = g
                else:
                    u = us[name]
                    want = (loss(S, name, x + H * u) - loss(S, name, x - H * u)) / (2 * H)
                    entry[name] = {"u": u, "want": want, "scale": abs(want)}
            exp["steps"].append(entry)
            c = comps[order[k]]
            for name in set(c["args"]):
                if (k, name) in full_at and name in judged:
                    x = np.asarray(values[name], dtype=float)
                    g = np.zeros(x.shape)
                    f = FORMULAS[c["kind"]]
                    for j in np.ndindex(x.shape):
                        xp, xm = x.copy(), x.copy()
                        xp[j] += H
                        xm[j] -= H
                        fp = f(*[xp if a == name else values[a] for a in c["args"]])
                        fm = f(*[xm if a == name else values[a] for a in c["args"]])
                        g[j] = np.sum(fp - fm) / (2 * H)
                    exp["ones"][(k, name)] = g
    return exp


def _graph_details(spec, processed=(), broken=None, bad_node=None):
    return {"nodes": [{"name": n["name"], "kind": n["kind"], "args": list(n["args"])} for n in spec["nodes"]],
            "loss": spec["loss"], "processed": list(processed), "broken": broken, "bad_node": bad_node}


def judge_backward(spec, record, expected) -> CaseResult:
    """Judge one Backward run against the invariant expectation (full arrays or projections)."""
    where = f"Backward on graph `{spec.get('graph', '?')}`"
    if not isinstance(record, dict):
        return _fail("protocol_error", where, "the probe record is not a dict.")
    try:
        return _judge_backward(spec, record, expected, where)
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def _grad_at(snap, name):
    if not isinstance(snap, dict):
        return None
    a = snap.get(name)
    return a if _valid(a) is None else None


def _judge_backward(spec, rec, exp, where):
    comps = _components(spec)
    names = [c["name"] for c in comps]
    judged = _judged(spec)
    values = {n["name"]: np.asarray(spec["values"][n["name"]]) for n in spec["nodes"] if n["name"] in spec["values"]}
    values.update(exp["values"])
    rtol, atol = exp["rtol"], exp["atol"]
    rec_order = record_order(rec)
    graph = lambda k=0, broken=None, bad=None: {"graph": _graph_details(
        spec, [names[i] for i in rec_order[:k] if 0 <= i < len(names)], broken, bad)}
    fsteps = rec.get("forward_steps")
    if rec.get("error_at") in ("lookup", "construct", "probe") or not isinstance(fsteps, list):
        return _error_case(rec, where) if "error" in rec else _fail("protocol_error", where, "forward values missing.")
    for i, c in enumerate(comps[:len(fsteps)]):
        fs = fsteps[i] if isinstance(fsteps[i], dict) else {}
        v, want = fs.get("value"), np.asarray(exp["values"][c["name"]])
        at = f"{c['kind']}.forward (`{c['name']}`, position {i}) in graph `{spec['graph']}`"
        d = {"component": c["kind"], "position": i, "node": c["name"]}
        if _valid(v, want.shape) or not _close(v, want, FORWARD_RTOL, FORWARD_ATOL * (1 + np.max(np.abs(want), initial=0))):
            if np.all(np.isfinite(want)) and _valid(v, want.shape) is None and not np.all(np.isfinite(v)):
                return _fail("non_finite", at, "value contains NaN or inf.", {**d, **graph(0, c["name"], c["name"])})
            return _fail("forward_wrong", at, "value wrong, so Backward is not judged.", {**d, **graph(0, c["name"], c["name"])})
        args = fs.get("args") if isinstance(fs.get("args"), dict) else {}
        for a in c["args"]:
            if not _same_value(args.get(a), values[a]):
                return _fail("operand_mutated", at, f"changed the value of its operand `{a}`.",
                             {**d, "operand": a, **graph(0, c["name"], a)})
    if "error" in rec and rec.get("error_at") == "forward":
        ci = rec.get("error_component")
        c = comps[ci] if isinstance(ci, int) and 0 <= ci < len(comps) else None
        w = f"{c['kind']}.forward (`{c['name']}`, position {ci}) in graph `{spec['graph']}`" if c else where
        return _error_case({"error": rec["error"]}, w, c["kind"] if c else None)
    if len(fsteps) != len(comps):
        return _fail("protocol_error", where, "forward values missing.")
    order = record_order(rec)
    steps = rec.get("steps") or []
    n_ok, reason = valid_prefix(spec, order)
    pre = rec.get("pre")
    if order and not isinstance(pre, dict):
        return _fail("protocol_error", where, "grads before the first step missing from the record.")
    if isinstance(pre, dict):  # also when the first backward() raised
        bad = _check_pre(spec, pre, values, where, graph)
        if bad:
            return bad
    prev = pre
    for k in range(len(order)):
        i = order[k]
        c = comps[i] if 0 <= i < len(comps) else None
        step_where = f"{where}, reverse step {k + 1}" + (f", after {c['kind']}.backward (`{c['name']}`, position {i})" if c else "")
        if k >= n_ok:
            return _fail("wrong_order", step_where, reason + ".", {"step": k + 1, "component": c["kind"] if c else None,
                                                                 "position": i, **graph(k, c["name"] if c else None)})
        s = steps[k]
        delta = s.get("grads") if isinstance(s, dict) else None
        # a step records only the grads it changed (see _changed); the rest are as before it
        snap = {**prev, **delta} if isinstance(delta, dict) and isinstance(prev, dict) else None
        args = s.get("args") if isinstance(s, dict) and isinstance(s.get("args"), dict) else {}
        for a in c["args"]:
            if not _same_value(args.get(a), values[a]):
                return _fail("operand_mutated", f"{step_where}", f"{c['kind']}.backward changed the value of its operand `{a}`.",
                             {"step": k + 1, "component": c["kind"], "position": i, "operand": a, "node": a,
                              **graph(k, c["name"], a)})
        up = s.get("upstream") if isinstance(s, dict) else None
        want_up = _grad_at(prev, c["name"])
        if want_up is not None and (_valid(up, want_up.shape) or not np.array_equal(up, want_up)):
            return _fail("grads_not_zeroed", step_where,
                         f"`{c['name']}`.grad was changed by Backward between steps (reset inside the loop?), "
                         "so its backward() did not see its accumulated upstream gradient.",
                         {"step": k + 1, "component": c["kind"], "position": i, **graph(k, c["name"], c["name"])})
        # the processed component's operands first: that is where a wrong backward shows
        for name in list(dict.fromkeys(c["args"])) + judged:
            if name not in judged:
                continue
            entry = exp["steps"][k][name]
            got = _grad_at(snap, name)
            shape = np.shape(values[name])
            base = _Lazy(lambda: {"step": k + 1, "component": c["kind"], "position": i, "node": name,
                                  **graph(k, c["name"], name)})
            if got is None:
                return _fail("exception", step_where, f"`{name}`.grad is missing or not numeric.", base)
            if got.shape != shape:
                code = "grad_shape"
                if c["kind"] == "VDot" and name in c["args"]:
                    code = "matmul_transposed"
                elif name in c["args"] and got.shape == np.shape(values[c["name"]]):
                    code = "bias_not_summed"
                return _fail(code, step_where, f"`{name}`.grad has shape {got.shape}, expected {shape}.", base)
            if not np.all(np.isfinite(got)):
                return _fail("non_finite", step_where, f"`{name}`.grad contains NaN or inf.", base)
            if isinstance(entry, dict):
                g = float(np.sum(got * entry["u"]))
                if abs(g - entry["want"]) > rtol * entry["scale"] + atol:
                    return _fail("wrong_gradient", step_where, f"`{name}`.grad breaks the invariant.", base,
                                 localise=[(k, name)] + ([(k - 1, name)] if k else []))
                continue
            want = np.asarray(entry)
            if _close(got, want, rtol, atol):
                continue
            before = _grad_at(prev, name)
            want_before = (np.ones(shape) if name == spec["loss"] else np.zeros(shape)) if k == 0 else exp["steps"][k - 1][name]
            if isinstance(want_before, dict):
                return _fail("wrong_gradient", step_where, f"`{name}`.grad breaks the invariant.", base,
                             localise=[(k - 1, name)])
            err = _errors(got, want)
            base = {**base.make(), **err}
            if name not in c["args"]:
                return _fail("wrong_gradient", step_where,
                             f"`{name}`.grad changed although `{name}` is not an operand of `{c['name']}`: {_describe(err)}.", base)
            if before is not None and np.any(before != 0) and _close(got, want - want_before, rtol, atol):
                return _fail("assign_not_accumulate", step_where,
                             f"{c['kind']}.backward: `{name}`.grad was overwritten — the value left by the other consumer of "
                             f"`{name}` was lost.", base)
            ones = exp.get("ones", {}).get((k, name))
            code, what = classify(got - before, want - want_before, rtol, atol,
                                  ones, is_matmul=c["kind"] == "VDot")
            return _fail(code, step_where, f"{c['kind']}.backward: the contribution to `{name}`.grad {what}; "
                                           f"`{name}`.grad: {_describe(err)}.", base)
        prev = snap
    if "error" in rec:
        ci = rec.get("error_component")
        c = comps[ci] if isinstance(ci, int) and 0 <= ci < len(comps) else None
        if rec.get("error_at") == "backward2":
            w = f"{where}, second call"
        elif c is not None:
            w = f"{where}, reverse step {len(order) + 1}, in {c['kind']}.backward (`{c['name']}`, position {ci})"
        else:
            w = where
        if c is not None and rec.get("error") and str(rec["error"].get("type")) == "AttributeError" and "grad" in str(rec["error"].get("message")):
            return _fail("grads_not_zeroed", w, f"raised AttributeError: {rec['error'].get('message')} (a grad was never set).")
        broadcast = c is not None and len({np.shape(values[a]) for a in c["args"] if a in judged}) > 1
        return _error_case(rec, w, c["kind"] if c else None, broadcast=broadcast and c["kind"] != "VDot")
    if rec.get("truncated"):
        return _fail("wrong_order", where, "called backward() far more often than there are components.", graph(len(order)))
    missing = [names[i] for i in range(len(comps)) if i not in set(order)]
    if missing:
        return _fail("wrong_order", where, f"never called backward() of `{missing[0]}`"
                     + (" (no component was processed)" if not order else "") + ".", graph(len(order), missing[0]))
    final = rec.get("final")
    for name in judged:
        got, last = _grad_at(final, name), _grad_at(prev, name)
        if got is None or last is None or got.shape != last.shape or not np.array_equal(got, last):
            return _fail("wrong_gradient", where, f"`{name}`.grad was changed after the last backward() call.",
                         {"node": name, **graph(len(order))})
    final2 = rec.get("final2")
    for name in judged:
        a, b = _grad_at(final, name), _grad_at(final2, name)
        if b is None or a.shape != b.shape or not _close(b, a, RTOL_EXACT, ATOL_EXACT * (1 + np.max(np.abs(a), initial=0))):
            return _fail("grads_not_zeroed", f"{where}, second call",
                         f"calling Backward twice gave a different `{name}`.grad (stale gradients accumulated).",
                         {"node": name, **graph(len(order))})
    return CaseResult(True)


def _same_value(got, want):
    want = np.asarray(want)
    return _valid(got, want.shape) is None and _close(got, want, FORWARD_RTOL, FORWARD_ATOL * (1 + np.max(np.abs(want), initial=0)))


def _check_pre(spec, pre, values, where, graph):
    w = f"{where}, before the first reverse step"
    loss = spec["loss"]
    for name in [loss] + [n for n in _judged(spec) if n != loss]:
        g = _grad_at(pre, name)
        shape = np.shape(values[name])
        base = {"step": 0, "node": name, **graph(0, None, name)}
        if g is None:
            return _fail("grads_not_zeroed", w, f"`{name}`.grad is not a numeric array.", base)
        if g.shape != shape:
            return _fail("grad_shape", w, f"`{name}`.grad has shape {g.shape}, expected {shape} (its value's shape).", base)
        want = np.ones(shape) if name == loss else np.zeros(shape)
        if not np.array_equal(g, want):
            if name == loss:
                return _fail("loss_not_seeded", w, f"loss.grad is {_jsonable(g)}, expected ones.", base)
            return _fail("grads_not_zeroed", w, f"`{name}`.grad still holds an old value, expected zeros.", base)
    return None


def numeric_backward_case(ns, spec, counter=None) -> CaseResult:
    record = probe(ns, spec)
    order = record_order(record)
    full_at = set()
    for _ in range(4):
        verdict = judge_backward(spec, record, numeric_backward_expectation(spec, order, counter, full_at))
        if not verdict.localise or set(verdict.localise) <= full_at:
            return verdict
        full_at |= set(verdict.localise)
    return verdict


def check_backward(ns, graph="x_times_x_plus_1", seed=0, classes=None, test_id=None) -> Result:
    """Loop-invariant check of ``Backward``: ``check_backward(ns, graph="mlp2", seed=0)``.

    ``classes`` defaults to the contract classes defined in ``ns``.
    """
    classes = classes or [c for c in ALL_CLASSES if _get(ns, c) is not None]
    try:
        spec = graph_spec(graph, seed, classes)
    except ValueError as e:
        return Result(test_id or f"backward_{graph}", False, 0.0, f"graph `{graph}`: {e}", "missing", {})
    return combine(test_id or f"backward_{graph}", [numeric_backward_case(ns, spec)])




# ----------------------------------------------------------------------------------
# Plain functions: logistic_ls_grads, derivative, gradient_fwd, gradient_rev, unbroadcast
# ----------------------------------------------------------------------------------

FUNCTION_NAMES = ("exp", "log", "sin", "cos", "sigmoid", "tanh")


def _math_sigmoid(x):
    return 0.5 + 0.5 * math.tanh(0.5 * x)


MATH_FUNCTIONS = {"exp": math.exp, "log": math.log, "sin": math.sin, "cos": math.cos,
                  "sigmoid": _math_sigmoid, "tanh": math.tanh}


def _lambda(src, env):
    """A test function from the suite's source text, with ``env``'s elementary functions in scope."""
    if not (isinstance(src, str) and src.lstrip().startswith("lambda")):
        raise ValueError("a test function must be a lambda expression")
    return eval(src, {"__builtins__": {}, **env})


def _env(ns):
    return {k: _get(ns, k) for k in FUNCTION_NAMES if _get(ns, k) is not None}


def _materialise(v, rng):
    """Suite case values: {random = [dims]} -> seeded normal array, {tuple = [...]} stays a marker."""
    if isinstance(v, dict) and "random" in v:
        return rng.normal(size=tuple(int(i) for i in v["random"]))
    if isinstance(v, (list, tuple)) and not isinstance(v, str):
        return [_materialise(x, rng) for x in v]
    return v


def _plain(v):
    if isinstance(v, dict) and "tuple" in v:
        return tuple(int(i) for i in v["tuple"])
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def function_specs(target, cases=None, seed=0) -> list:
    """One spec per case (a dict of keyword arguments); default cases for logistic_ls_grads."""
    rng = np.random.default_rng(seed)
    if cases is None:
        if target != "logistic_ls_grads":
            raise ValueError(f"function check of {target!r} needs cases")
        cases = [{"w": float(rng.normal(0, 1.5)), "b": float(rng.normal()), "x": float(rng.normal(0, 1.5)),
                  "t": float(rng.integers(0, 2)), "lam": float(rng.uniform(0.01, 1))} for _ in range(3)]
    return [{"check": "function", "target": target, "case": i,
             "kwargs": {k: _materialise(v, rng) for k, v in dict(c).items()}} for i, c in enumerate(cases)]


def _out(x):
    """A returned value as data: a list for tuples/lists of numbers, else one numeric array."""
    if isinstance(x, (tuple, list)) and not (x and isinstance(x[0], (int, float)) and len(x) > 3 and False):
        return {"seq": [_arr(_scalar(v)) for v in x]}
    return {"one": _arr(_scalar(x))}


def _scalar(v):
    """Dual/Var results as their value; numbers and arrays unchanged."""
    for attr in ("val", "value"):
        if hasattr(v, attr) and not isinstance(v, np.ndarray):
            return getattr(v, attr)
    return v


def _probe_function(ns, spec):
    fn = _need(ns, spec["target"])
    kwargs = {}
    for k, v in spec["kwargs"].items():
        kwargs[k] = _lambda(v, _env(ns)) if isinstance(v, str) and v.lstrip().startswith("lambda") else _plain(v)
        if isinstance(kwargs[k], list):
            kwargs[k] = [_plain(x) for x in kwargs[k]]
    try:
        return {"result": _out(fn(**kwargs))}
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": "call"}


def _central(f, xs, i):
    xp, xm = list(xs), list(xs)
    xp[i] += H
    xm[i] -= H
    return (f(*xp) - f(*xm)) / (2 * H)


def _logistic_formula(w, b, x, t, lam):
    y = _math_sigmoid(w * x + b)
    return 0.5 * (y - t) ** 2 + lam * 0.5 * w ** 2


def numeric_function_expectation(spec) -> dict:
    """The expected result from stated formulas and central differences."""
    target, kw = spec["target"], {k: _plain(v) for k, v in spec["kwargs"].items()}
    if target == "logistic_ls_grads":
        f = lambda w, b: _logistic_formula(w, b, kw["x"], kw["t"], kw["lam"])
        xs = [float(kw["w"]), float(kw["b"])]
        return {"result": {"seq": [np.asarray(f(*xs)), np.asarray(_central(f, xs, 0)), np.asarray(_central(f, xs, 1))]},
                "rtol": RTOL, "atol": ATOL}
    if target in ("derivative", "gradient_fwd", "gradient_rev"):
        f = _lambda(kw["f"], MATH_FUNCTIONS)
        if target == "derivative":
            return {"result": {"one": np.asarray(_central(f, [float(kw["x"])], 0))}, "rtol": RTOL, "atol": ATOL}
        xs = [float(x) for x in kw["xs"]]
        return {"result": {"one": np.array([_central(f, xs, i) for i in range(len(xs))])}, "rtol": RTOL, "atol": ATOL}
    if target == "unbroadcast":  # the adjoint of broadcasting, element by element
        g, shape = np.asarray(kw["grad"], dtype=float), tuple(kw["shape"])
        want = np.zeros(shape)
        for j in np.ndindex(shape):
            e = np.zeros(shape)
            e[j] = 1.0
            want[j] = np.sum(g * np.broadcast_to(e, g.shape))
        return {"result": {"one": want}, "rtol": RTOL_EXACT, "atol": ATOL_EXACT}
    raise ValueError(f"no numeric expectation for {target!r}")


OUTPUT_NAMES = {"logistic_ls_grads": ("L_reg", "w_bar", "b_bar")}


def judge_function(spec, record, expected) -> CaseResult:
    target = spec["target"]
    where = f"{target} (case {spec.get('case', 0) + 1})"
    if not isinstance(record, dict):
        return _fail("protocol_error", where, "the probe record is not a dict.")
    try:
        if "error" in record:
            return _error_case(record, where)
        got, want = record.get("result"), expected["result"]
        rtol, atol = expected["rtol"], expected["atol"]
        if not isinstance(got, dict):
            return _fail("protocol_error", where, "result missing from the record.")
        if "seq" in want:
            g = got.get("seq")
            if not isinstance(g, list) or len(g) != len(want["seq"]):
                return _fail("forward_wrong", where, f"should return {len(want['seq'])} values.")
            pairs = list(zip(g, want["seq"]))
        else:
            g = got.get("one")
            pairs = [(g, want["one"])]
        names = OUTPUT_NAMES.get(target, ("result",) * len(pairs))
        for k, (a, w) in enumerate(pairs):
            w = np.asarray(w, dtype=float)
            bad = _valid(a)
            if bad:
                return _fail("exception", where, f"{names[k]} {bad}.")
            if a.size == w.size and a.shape != w.shape and w.ndim == 0:
                a = a.reshape(())
            if a.shape != w.shape:
                return _fail("grad_shape", where, f"{names[k]} has shape {a.shape}, expected {w.shape}.",
                             {"expected_shape": list(w.shape), "got_shape": list(a.shape)})
            if np.all(np.isfinite(w)) and not np.all(np.isfinite(a)):
                return _fail("non_finite", where, f"{names[k]} contains NaN or inf.")
            tol = atol * (1 + np.max(np.abs(w), initial=0))
            if not _close(a, w, rtol, tol):
                err = _errors(a, w)
                if target == "logistic_ls_grads" and k == 0:
                    return _fail("forward_wrong", where, f"L_reg wrong: {_describe(err)}.", err)
                code, what = classify(a.astype(float), w, rtol, tol)
                return _fail(code, where, f"{names[k]} {what}: {_describe(err)}.", err)
        return CaseResult(True)
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_function(ns, target, cases=None, seed=0, test_id=None) -> Result:
    """``check_function(ns, "derivative", cases=[{"f": "lambda x: x * x", "x": 3.0}])``."""
    specs = function_specs(target, cases, seed)
    with _quiet():
        verdicts = [judge_function(s, probe(ns, s), numeric_function_expectation(s)) for s in specs]
    return combine(test_id or target, verdicts)


# ----------------------------------------------------------------------------------
# Dual numbers
# ----------------------------------------------------------------------------------

# Each operation: the expressions tried, as functions of (F, A, B, c, n): F the elementary
# functions, A and B duals (or floats), c a plain number, n a numeric exponent.
DUAL_OPS = {
    "add": (lambda F, A, B, c, n: A + B, lambda F, A, B, c, n: A + c),
    "radd": (lambda F, A, B, c, n: c + A,),
    "sub": (lambda F, A, B, c, n: A - B, lambda F, A, B, c, n: A - c),
    "rsub": (lambda F, A, B, c, n: c - A,),
    "mul": (lambda F, A, B, c, n: A * B, lambda F, A, B, c, n: A * c),
    "rmul": (lambda F, A, B, c, n: c * A,),
    "div": (lambda F, A, B, c, n: A / B, lambda F, A, B, c, n: A / c),
    "rdiv": (lambda F, A, B, c, n: c / A,),
    "pow": (lambda F, A, B, c, n: A ** n, lambda F, A, B, c, n: A ** 2),
    "neg": (lambda F, A, B, c, n: -A,),
}
for _f in FUNCTION_NAMES:
    DUAL_OPS[_f] = ((lambda f: lambda F, A, B, c, n: F[f](A))(_f), (lambda f: lambda F, A, B, c, n: F[f](abs(c)))(_f))


def dual_specs(ops=None, seed=0) -> list:
    rng = np.random.default_rng(seed)
    a = (float(rng.uniform(0.5, 2.0)), float(rng.normal()))  # positive: log and fractional powers
    b = (float(rng.choice([-1, 1]) * rng.uniform(0.5, 2.0)), float(rng.normal()))
    c = float(rng.choice([-1, 1]) * rng.uniform(0.5, 2.0))
    n = float(rng.choice([3.0, -2.0, 2.5]))
    return [{"check": "dual", "op": op, "case": i, "a": a, "b": b, "c": c, "n": n}
            for i, op in enumerate(ops or list(DUAL_OPS))]


def _probe_dual(ns, spec):
    Dual = _need(ns, "Dual")
    F = _env(ns)
    out = []
    for expr in DUAL_OPS[spec["op"]]:
        try:
            A, B = Dual(*spec["a"]), Dual(*spec["b"])
            r = expr(F, A, B, spec["c"], spec["n"])
            if hasattr(r, "val") and hasattr(r, "dot"):
                out.append({"val": float(r.val), "dot": float(r.dot)})
            else:
                out.append({"val": float(r)})
        except (Exception, SystemExit) as e:
            out.append({"error": _err(e)})
    return {"results": out}


def numeric_dual_expectation(spec) -> dict:
    """val from math; dot = d/dt of the expression along (a.dot, b.dot), by central differences."""
    (av, ad), (bv, bd), c, n = spec["a"], spec["b"], spec["c"], spec["n"]
    out = []
    for i, expr in enumerate(DUAL_OPS[spec["op"]]):
        g = lambda t: expr(MATH_FUNCTIONS, av + t * ad, bv + t * bd, c, n)
        with _quiet():
            dual = not (spec["op"] in FUNCTION_NAMES and i == 1)
            out.append({"val": g(0.0), "dot": (g(H) - g(-H)) / (2 * H)} if dual else {"val": g(0.0)})
    return {"results": out, "rtol": RTOL, "atol": ATOL * 10}


DUAL_TEXT = {"add": ("a + b", "a + c"), "radd": ("c + a",), "sub": ("a - b", "a - c"), "rsub": ("c - a",),
             "mul": ("a * b", "a * c"), "rmul": ("c * a",), "div": ("a / b", "a / c"), "rdiv": ("c / a",),
             "pow": ("a ** n", "a ** 2"), "neg": ("-a",)}


def judge_dual(spec, record, expected) -> CaseResult:
    op = spec["op"]
    texts = DUAL_TEXT.get(op, (f"{op}(a)", f"{op}(|c|) for a float"))
    where = f"Dual `{op}`"
    try:
        got = record["results"]
        if not isinstance(got, list) or len(got) != len(expected["results"]):
            return _fail("protocol_error", where, "results missing from the record.")
        for text, g, w in zip(texts, got, expected["results"]):
            w_ = f"{where}: {text}"
            if not isinstance(g, dict):
                return _fail("protocol_error", w_, "malformed result.")
            if "error" in g:
                return _error_case({"error": g["error"]}, w_)
            val = g.get("val")
            if not isinstance(val, float) or not math.isfinite(val):
                return _fail("non_finite" if isinstance(val, float) else "protocol_error", w_, "value is not a finite number.")
            tol = expected["atol"] * (1 + abs(w["val"]))
            if abs(val - w["val"]) > tol + expected["rtol"] * abs(w["val"]):
                return _fail("forward_wrong", w_, f"value: expected {w['val']:.6g}, got {val:.6g}.",
                             {"expected": w["val"], "got": val})
            if "dot" not in w:
                continue
            dot = g.get("dot")
            if not isinstance(dot, float):
                return _fail("wrong_gradient", w_, "should return a Dual (with .val and .dot).")
            tol = expected["atol"] * (1 + abs(w["dot"]))
            if not math.isfinite(dot) or abs(dot - w["dot"]) > tol + expected["rtol"] * abs(w["dot"]):
                code, what = classify(np.array([dot]), np.array([w["dot"]]), expected["rtol"], tol)
                return _fail(code, w_, f"dot {what}: expected {w['dot']:.6g}, got {dot:.6g}.",
                             {"expected": w["dot"], "got": dot})
        return CaseResult(True)
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_dual(ns, ops=None, seed=0, test_id=None) -> Result:
    """``check_dual(ns, ops=["add", "exp"], seed=0)``: value and dot of each operation."""
    with _quiet():
        verdicts = [judge_dual(s, probe(ns, s), numeric_dual_expectation(s)) for s in dual_specs(ops, seed)]
    return combine(test_id or "dual", verdicts)


# ----------------------------------------------------------------------------------
# Tape (Var)
# ----------------------------------------------------------------------------------

TAPE_FUNCTIONS = (
    "lambda x, y: (x * y) * (x * y) + x * x",
    "lambda x, y: (lambda s: s * sigmoid(s) - s / (1 + y * y) + (-s))(x * y + x)",
    "lambda x, y, z: exp(x - y) * tanh(z) + log(1 + z * z) - x / (2 + y * y)",
    "lambda x: (lambda u: u * u + sin(u) - cos(u) / 2)(x * x + 1)",
    "lambda x, y: 3 - x * y + x ** 2 - 2 * y",
)


def tape_specs(seed=0) -> list:
    rng = np.random.default_rng(seed)
    return [{"check": "tape", "case": i, "f": f, "xs": [float(v) for v in rng.uniform(-1.5, 1.5, f.count(",") + 1
                                                                                         if "lambda x, y, z" in f else
                                                                                         (2 if "lambda x, y" in f else 1))]}
            for i, f in enumerate(TAPE_FUNCTIONS)]


def _probe_tape(ns, spec):
    Var = _need(ns, "Var")
    f = _lambda(spec["f"], _env(ns))
    stage = "forward"
    try:
        vs = [Var(x) for x in spec["xs"]]
        out = f(*vs)
        rec = {"value": float(out.value)}
        stage = "backward"
        out.backward()
        rec["grads"] = [float(v.grad) for v in vs]
        stage = "backward2"
        out.backward()
        rec["grads2"] = [float(v.grad) for v in vs]
        return rec
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": stage}


def numeric_tape_expectation(spec) -> dict:
    f = _lambda(spec["f"], MATH_FUNCTIONS)
    xs = list(spec["xs"])
    g = [_central(f, xs, i) for i in range(len(xs))]
    return {"value": f(*xs), "grads": g, "grads2": g, "rtol": RTOL, "atol": ATOL * 10}


def judge_tape(spec, record, expected) -> CaseResult:
    where = f"Var (case {spec.get('case', 0) + 1}: f = {spec['f']})"
    try:
        if "error" in record:
            return _error_case(record, where + (f", {record.get('error_at')}" if record.get("error_at") else ""))
        rtol, atol = expected["rtol"], expected["atol"]
        val = record["value"]
        if not isinstance(val, float):
            return _fail("protocol_error", where, "value missing from the record.")
        if abs(val - expected["value"]) > atol * (1 + abs(expected["value"])) + rtol * abs(expected["value"]):
            return _fail("forward_wrong", where, f"value: expected {expected['value']:.6g}, got {val:.6g}.")
        want = np.array(expected["grads"], dtype=float)
        for key in ("grads", "grads2"):
            got = record.get(key)
            if not (isinstance(got, list) and len(got) == len(want) and all(isinstance(v, float) for v in got)):
                return _fail("protocol_error", where, f"{key} missing from the record.")
            got = np.array(got)
            tol = atol * (1 + np.max(np.abs(want)))
            if not _close(got, want, rtol, tol):
                err = _errors(got, want)
                if key == "grads2":
                    first = np.array(record["grads"])
                    return _fail("grads_not_zeroed", where + ", second backward()",
                                 f"calling backward() twice changed the grads (from {first.tolist()} to "
                                 f"{got.tolist()}): grads are not reset.", err)
                code, what = classify(got, want, rtol, tol)
                return _fail(code, where, f"input grads {what}: {_describe(err)}.", err)
        return CaseResult(True)
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_tape(ns, seed=0, test_id=None) -> Result:
    """``check_tape(ns, seed=0)``: Var values and grads, shared subexpressions, backward() twice."""
    with _quiet():
        verdicts = [judge_tape(s, probe(ns, s), numeric_tape_expectation(s)) for s in tape_specs(seed)]
    return combine(test_id or "tape", verdicts)


# ----------------------------------------------------------------------------------
# Trained model accuracy (labels stay with the judge)
# ----------------------------------------------------------------------------------

def _probe_mlp(ns, spec):
    predict = _need(ns, spec.get("target") or "predict")
    try:
        return {"pred": _arr(predict(np.array(spec["X"])))}
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": "call"}


def judge_mlp_accuracy(spec, record, labels, target) -> CaseResult:
    where = f"{spec.get('target') or 'predict'}(X_test)"
    try:
        if "error" in record:
            return _error_case(record, where)
        labels = np.asarray(labels)
        pred = record.get("pred")
        bad = _valid(pred, labels.shape)
        if bad:
            return _fail("forward_wrong", where, f"the predictions {bad}.")
        acc = float(np.mean(pred == labels))
        if acc < target:
            return _fail("forward_wrong", where, f"accuracy {acc:.3f} on held-out data, needs {target:.3f}.",
                         {"accuracy": acc, "target": target})
        return CaseResult(True, details={"accuracy": acc})
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_mlp_accuracy(ns, X, y, target=0.95, predict="predict", test_id=None) -> Result:
    spec = {"check": "mlp_accuracy", "target": predict, "X": np.asarray(X)}
    with _quiet():
        return combine(test_id or "accuracy", [judge_mlp_accuracy(spec, probe(ns, spec), y, target)])


_PROBES = {"component": _probe_component, "backward_loop": _probe_backward, "function": _probe_function,
           "dual": _probe_dual, "tape": _probe_tape, "mlp_accuracy": _probe_mlp}


# ----------------------------------------------------------------------------------
# A suite.toml test, checked numerically (visible tests)
# ----------------------------------------------------------------------------------

def _seeds(params):
    return list(params.get("seeds") or [params.get("seed", 0)])


def run_public(ns, test, which="visible") -> Result:
    """Run one suite test (a dict as in suite.toml) with the numeric, public expectations."""
    p = dict(test.get(which) or {})
    check, target, tid = test["check"], test.get("target"), test.get("id", test.get("target", "test"))
    cases = []
    with _quiet():
        for seed in _seeds(p):
            if check == "component":
                for s in component_specs(target, p.get("shapes"), seed, p.get("scales"), p.get("domain"), p.get("labels")):
                    cases.append(numeric_component_case(ns, s))
            elif check == "backward_loop":
                classes = test.get("classes") or p.get("classes") or [c for c in ALL_CLASSES if _get(ns, c) is not None]
                for g in p.get("graphs", ["x_times_x_plus_1"]):
                    cases.append(numeric_backward_case(ns, graph_spec(g, seed, classes)))
            elif check == "function":
                cases += [judge_function(s, probe(ns, s), numeric_function_expectation(s))
                          for s in function_specs(target, p.get("cases"), seed)]
            elif check == "dual":
                cases += [judge_dual(s, probe(ns, s), numeric_dual_expectation(s)) for s in dual_specs(p.get("ops"), seed)]
            elif check == "tape":
                cases += [judge_tape(s, probe(ns, s), numeric_tape_expectation(s)) for s in tape_specs(seed)]
            else:
                raise ValueError(f"check {check!r} has no public form; use the notebook's own test")
            if check == "function" and "seeds" not in p:
                break
    return combine(tid, cases)
