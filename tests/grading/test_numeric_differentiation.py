"""A backward that differentiates numerically is detected by construction and held for a TA.

Each attack is a real notebook built from the source notebook (``grader.grading.sample``)
whose student replaced one derivative by a numerical one that is accurate enough to pass
the hidden tolerance; one real ``backprop grade`` batch per assignment grades them all. The
attacks must be flagged "needs review: ..." with their reason, their points held (0 until a
TA looks); the honest notebook and correct-but-different code must not be flagged.
The corpus of correct variants is checked in-process through the same child-side
instrumentation and parent-side judge.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

import reference
from grader.checks import hidden
from grader.checks.forensics import FORENSIC_CHECKS, forensics_probe
from grader.files import file_stem
from grader.grading import forensics, sample
from grader.grading.batch import Request, format_summary, grade
from grader.grading.execute import Options
from grader.runner import Limits
from tests.corpus import load_variant

ISOLATION = os.environ.get("BACKPROP_ISOLATION") or None
OPTS = Options(limits=Limits(timeout=10.0, memory_bytes=1 << 30), budget=120.0)

CENTRAL = '''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)

    def backward(self):
        """x_bar by central differences of my own forward."""
        x, up, h = self.x.value.copy(), self.grad, 1e-5
        g = np.zeros(x.shape)
        for j in np.ndindex(x.shape):
            self.x.value = x.copy()
            self.x.value[j] += h
            self.forward()
            plus = np.sum(up * self.value)
            self.x.value = x.copy()
            self.x.value[j] -= h
            self.forward()
            g[j] = (plus - np.sum(up * self.value)) / (2 * h)
        self.x.value = x
        self.forward()
        self.x.grad += g
'''
STENCIL = '''
class Tanh(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.tanh(self.x.value)

    def backward(self):
        """Five-point stencil, elementwise (the op is elementwise)."""
        x, h = self.x.value.copy(), 1e-3
        vals = []
        for k in (-2, -1, 1, 2):
            self.x.value = x + k * h
            self.forward()
            vals.append(self.value)
        self.x.value = x
        self.forward()
        d = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
        self.x.grad += self.grad * d
'''
COMPLEX_STEP = '''
class Exp(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.exp(self.x.value)

    def backward(self):
        """Complex step: exact to rounding."""
        x, h = self.x.value.copy(), 1e-20
        self.x.value = x + 1j * h
        self.forward()
        d = np.imag(self.value) / h
        self.x.value = x
        self.forward()
        self.x.grad += self.grad * d
'''
FRESH_COMPONENT = '''
class Log(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.log(self.x.value)

    def backward(self):
        """A fresh Log on a shifted Input, for each direction."""
        x, h = self.x.value, 1e-6
        up, dn = Input(), Input()
        up.set(x + h)
        dn.set(x - h)
        a, b = Log(up), Log(dn)
        a.forward()
        b.forward()
        self.x.grad += self.grad * (a.value - b.value) / (2 * h)
'''
SHIFTED_HELPER = '''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)

    def backward(self):
        """The helper forward uses, at x + h and x - h."""
        x, h = self.x.value, 1e-6
        self.x.grad += self.grad * (sigmoid(x + h) - sigmoid(x - h)) / (2 * h)
'''
INLINE_DIFFERENCES = '''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)

    def backward(self):
        """The formula differenced inline: no forward call, no helper call."""
        x, h = self.x.value, 1e-5
        d = (1 / (1 + np.exp(-(x + h))) - 1 / (1 + np.exp(-(x - h)))) / (2 * h)
        self.x.grad += self.grad * d
'''
# correct and analytic, and calls what forward calls: the helper on the value, super().backward()
HELPER_ON_VALUE = '''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)

    def backward(self):
        s = sigmoid(self.x.value)
        self.x.grad += self.grad * s * (1 - s)


class _TanhBase(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.tanh(self.x.value)

    def backward(self):
        self.x.grad += self.grad * (1 - self.value ** 2)


class Tanh(_TanhBase):
    def backward(self):
        super().backward()
'''
NUMERIC_LOOP = '''
def Backward(loss):
    """Every operand's grad by central differences through each component's forward."""
    for node in components + params + inputs:
        node.grad = np.zeros_like(np.asarray(node.value, dtype=float))
    loss.grad = np.ones_like(loss.grad)
    h = 1e-6
    for c in components[::-1]:
        found = [x for v in vars(c).values() for x in (v if isinstance(v, (list, tuple)) else [v])]
        operands = [v for v in found if hasattr(v, "grad") and hasattr(v, "value") and v is not c]
        for a in operands:
            x = np.asarray(a.value, dtype=float).copy()
            g = np.zeros(x.shape)
            for j in np.ndindex(x.shape):
                a.value = x.copy()
                a.value[j] += h
                c.forward()
                plus = np.sum(c.grad * c.value)
                a.value = x.copy()
                a.value[j] -= h
                c.forward()
                g[j] = (plus - np.sum(c.grad * c.value)) / (2 * h)
            a.value = x
            c.forward()
            a.grad = a.grad + g
'''
NUMERIC_DERIVATIVES = {
    "derivative": '''
def derivative(f, x):
    h = 1e-6
    return (f(x + h) - f(x - h)) / (2 * h)
''',
    "gradient_fwd": '''
def gradient_fwd(f, xs):
    h, g = 1e-6, []
    for i in range(len(xs)):
        up = [x + h if j == i else x for j, x in enumerate(xs)]
        dn = [x - h if j == i else x for j, x in enumerate(xs)]
        g.append((f(*up) - f(*dn)) / (2 * h))
    return np.array(g)
''',
    "gradient_rev": '''
def gradient_rev(f, xs):
    """A complex step per input, no tape."""
    h = 1e-20
    return np.array([np.imag(f(*[x + 1j * h if j == i else x for j, x in enumerate(xs)])) / h
                     for i in range(len(xs))])
''',
}


def _redefine(nb: dict, name: str, code: str) -> dict:
    """``code`` appended to the solution cell that defines ``name`` (a student's own version)."""
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and name in sample._defined(sample._src(c))
                and c.get("metadata", {}).get("nbgrader", {}).get("solution"))
    return sample.append_code(nb, cell["id"], code)


def _batch(course: Path, assignment: str, notebooks: dict, root: Path):
    cls = root / "class"
    for name, nb in notebooks.items():
        sample.write(nb, cls / f"{name}.ipynb")
    summary = grade(Request(path=cls, assignment=assignment, course=course, out=root / "out", workers=2,
                            options=OPTS, nbgrader=False, reports=True, isolation=ISOLATION))
    records = {r["student"]: r for r in json.loads((root / "out" / "results.json").read_text())}
    return summary, records, root / "out"


def _review(rec: dict) -> list[str]:
    return [f for f in rec["flags"] if f.startswith("needs review: ")]


@pytest.fixture(scope="module")
def tensor(course, submitted_nb, tmp_path_factory):
    nbs = {"honest": submitted_nb,
           "central_differences": _redefine(submitted_nb, "Sigmoid", CENTRAL),
           "five_point_stencil": _redefine(submitted_nb, "Tanh", STENCIL),
           "complex_step": _redefine(submitted_nb, "Exp", COMPLEX_STEP),
           "fresh_component": _redefine(submitted_nb, "Log", FRESH_COMPONENT),
           "shifted_helper": _redefine(submitted_nb, "Sigmoid", SHIFTED_HELPER),
           "helper_on_value": _redefine(submitted_nb, "Sigmoid", HELPER_ON_VALUE),
           "inline_differences": _redefine(submitted_nb, "Sigmoid", INLINE_DIFFERENCES)}
    return _batch(course, "tensor_edf", nbs, tmp_path_factory.mktemp("numdiff_tensor"))


@pytest.fixture(scope="module")
def others(tmp_path_factory):
    from grader.authoring.course import generate

    course = tmp_path_factory.mktemp("numdiff_course") / "course"
    generate(["scalar_backprop", "forward_mode"], course)
    out = {"course": course}
    for assignment, attack in (("scalar_backprop", {"Backward": NUMERIC_LOOP}), ("forward_mode", NUMERIC_DERIVATIVES)):
        honest = sample.as_submitted(sample.source_notebook(course, assignment))
        numeric = honest
        for name, code in attack.items():
            numeric = _redefine(numeric, name, code)
        nbs = {"honest": honest, "numeric": numeric}
        out[assignment] = _batch(course, assignment, nbs, tmp_path_factory.mktemp(f"numdiff_{assignment}"))
    return out


def _held(rec: dict, test_id: str) -> dict:
    t = next(t for t in rec["tests"] if t["id"] == test_id)
    return t


@pytest.mark.parametrize("name, test_id, reason", [
    ("central_differences", "sigmoid", "Sigmoid.backward calls forward (numerical differentiation?)"),
    ("five_point_stencil", "tanh", "Tanh.backward calls forward (numerical differentiation?)"),
    ("complex_step", "exp", "Exp.backward calls forward (numerical differentiation?)"),
    ("fresh_component", "log", "Log.backward calls forward (numerical differentiation?)"),
    ("shifted_helper", "sigmoid", "Sigmoid.backward evaluates sigmoid at shifted inputs"),
])
def test_numeric_backward_is_flagged_and_its_points_held(tensor, name, test_id, reason):
    _, records, _ = tensor
    rec = records[name]
    assert rec["status"] == "graded"
    flags = _review(rec)
    assert any(reason in f for f in flags), flags
    t = _held(rec, test_id)
    assert t["points"] == 0 and t["result"]["diagnosis"] == "needs_review", t
    assert t["result"]["details"]["judged"]["passed"]  # accurate enough: only the evidence catches it
    # the other tests keep their points, unless they ran the same backward (the loop test)
    others = [t for t in rec["tests"] if t["id"] != test_id]
    assert all(t["points"] == t["max_points"] or t["result"]["diagnosis"] == "needs_review" for t in others), \
        [(t["id"], t["points"]) for t in others]


def test_the_flag_carries_the_precision_fingerprint(tensor):
    _, records, _ = tensor
    central = next(f for f in _review(records["central_differences"]) if "Sigmoid.backward" in f)
    assert "typical of finite differences" in central, central
    complex_step = next(f for f in _review(records["complex_step"]) if "Exp.backward" in f)
    assert "typical of analytic code" in complex_step, complex_step  # the fingerprint cannot see it


def test_the_fingerprint_alone_flags_but_keeps_the_points(tensor):
    """Differences of the formula written inline leave no evidence by construction: the
    precision fingerprint is the only signal, so the test is flagged, its points kept."""
    _, records, _ = tensor
    rec = records["inline_differences"]
    flags = _review(rec)
    assert any("Sigmoid: gradients only as precise as finite differences" in f and "points kept" in f
               for f in flags), flags
    assert rec["total"] == rec["max"]


@pytest.mark.parametrize("name", ["honest", "helper_on_value"])
def test_analytic_backward_is_not_flagged(tensor, name):
    _, records, _ = tensor
    rec = records[name]
    assert rec["total"] == rec["max"] and not _review(rec), rec["flags"]


def test_flags_reach_the_gradebook_the_report_and_the_summary_but_not_the_student(tensor):
    summary, records, out = tensor
    assert "central_differences" in summary["review"] and "honest" not in summary["review"]
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert "Sigmoid.backward calls forward" in rows["central_differences"]["review"]
    assert rows["honest"]["review"] == ""
    assert "central_differences" in format_summary(summary)
    report = Path(summary["outputs"]["report"]).read_text()
    assert "Sigmoid.backward calls forward" in report
    feedback = (out / "feedback" / f"{file_stem('central_differences')}.md").read_text()
    assert "reviewed by a TA" in feedback and "forward" not in feedback.split("| test |")[0]
    assert "numerical differentiation" not in feedback


def test_numeric_backward_loop_is_flagged(others):
    _, records, _ = others["scalar_backprop"]
    assert not _review(records["honest"]) and records["honest"]["total"] == records["honest"]["max"]
    flags = _review(records["numeric"])
    assert any("Backward calls forward (numerical differentiation?)" in f for f in flags), flags


def test_numeric_derivatives_are_flagged_and_held(others):
    _, records, _ = others["forward_mode"]
    honest = records["honest"]
    assert not _review(honest) and honest["total"] == honest["max"], honest["flags"]
    rec = records["numeric"]
    flags = _review(rec)
    for name, how in (("derivative", "instead of Dual/Var"), ("gradient_fwd", "instead of Dual/Var"),
                      ("gradient_rev", "with complex numbers (complex-step")):
        assert any(f"{name} calls f" in f and how in f for f in flags), flags
        t = _held(rec, name)  # held for review, or (main's stand-in f rejects plain floats) earned nothing
        assert t["points"] == 0, t


# -- in-process: the reference and every correct corpus variant leave no evidence -------------

SUITES = {}


def _tests(assignment: str) -> list[dict]:
    import tomllib

    if assignment not in SUITES:
        path = Path(reference.__file__).resolve().parent.parent / "assignments" / assignment / "suite.toml"
        SUITES[assignment] = tomllib.loads(path.read_text())["test"]
    return SUITES[assignment]


def _examine(ns, test) -> list[str]:
    specs = hidden.build_specs(test)
    records = [forensics_probe(ns, s) for s in specs]
    assert all("forensics" in r for r in records) == (test["check"] in FORENSIC_CHECKS)
    found, hold, _ = forensics.examine(test, specs, records, forensics.reference_expectation)
    return found + (["held"] if hold else [])


@pytest.mark.parametrize("assignment", ["tensor_edf", "scalar_backprop", "forward_mode"])
def test_the_reference_leaves_no_evidence(assignment):
    ns = {k: getattr(reference, k) for k in dir(reference) if not k.startswith("__")}
    for test in _tests(assignment):
        if test["check"] in ("mlp_accuracy",) or any(n not in ns for n in [test.get("target")] if n):
            continue
        assert _examine(ns, test) == [], test["id"]


@pytest.mark.parametrize("variant", sample.corpus("correct"), ids=lambda p: p.stem)
def test_correct_variants_leave_no_evidence(variant):
    """On the hidden seeds and ten more: neither evidence nor a finite-difference fingerprint."""
    ns, _ = load_variant(variant)
    targets = set(sample._defined(variant.read_text()))
    for test in _tests("tensor_edf"):
        if test.get("target") in targets or (test["check"] == "backward_loop" and targets & {"Backward"}):
            assert _examine(ns, test) == [], test["id"]
            more = dict(test, hidden=dict(test["hidden"], seeds=list(range(10))))
            assert _examine(ns, more) == [], test["id"]


def test_the_instrumentation_is_undone():
    ns = {k: getattr(reference, k) for k in dir(reference) if not k.startswith("__")}
    before = {name: dict(vars(cls)) for name, cls in ns.items() if isinstance(cls, type)}
    for test in _tests("tensor_edf")[:3]:
        _examine(ns, test)
    after = {name: dict(vars(cls)) for name, cls in ns.items() if isinstance(cls, type)}
    assert before == after


def _notebook_namespace(nb: dict) -> dict:
    """The notebook's own code cells (not its test cells) run into one namespace, as in the
    child: helpers and classes are the notebook's, not the reference package's."""
    ns: dict = {"__name__": "notebook"}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "code" and not meta.get("grade"):
            # plots are not graded (and matplotlib need not be installed)
            source = "\n".join(line for line in sample._src(cell).splitlines()
                               if "matplotlib" not in line and "plt." not in line)
            exec(compile(source, f"<cell {cell.get('id')}>", "exec"), ns)
    return ns


@pytest.mark.parametrize("assignment", ["tensor_edf", "scalar_backprop", "forward_mode"])
def test_the_source_notebooks_leave_no_evidence_over_many_seeds(assignment, course, others):
    course = course if assignment == "tensor_edf" else others["course"]
    ns = _notebook_namespace(sample.as_submitted(sample.source_notebook(course, assignment)))
    for test in _tests(assignment):
        if test["check"] in ("component", "function", "backward_loop") and "seeds" in test["hidden"]:
            many = dict(test, hidden=dict(test["hidden"], seeds=list(range(200, 230))))
            assert _examine(ns, many) == [], test["id"]
        elif test["check"] in ("component", "function", "backward_loop"):
            assert _examine(ns, test) == [], test["id"]


# -- a test's cases wrapped once (the child's probe_all) give the records of one install per case --

SWAPS_ITS_BACKWARD = '''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)

    def backward(self):
        """Analytic on the first call; then the class's backward becomes a numeric one."""
        s = sigmoid(self.x.value)
        self.x.grad += self.grad * s * (1 - s)
        type(self).backward = _numeric_backward


def _numeric_backward(self):
    x, up, h = self.x.value.copy(), self.grad, 1e-5
    g = np.zeros(x.shape)
    for j in np.ndindex(x.shape):
        self.x.value = x.copy()
        self.x.value[j] += h
        self.forward()
        plus = np.sum(up * self.value)
        self.x.value = x.copy()
        self.x.value[j] -= h
        self.forward()
        g[j] = (plus - np.sum(up * self.value)) / (2 * h)
    self.x.value = x
    self.forward()
    self.x.grad += g
'''
ADDS_A_HELPER = '''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)

    def backward(self):
        """Defines a module-level helper on the first call and differences it from then on."""
        g = globals()
        if "_late_helper" not in g:
            g["_late_helper"] = lambda v: 1 / (1 + np.exp(-v))
            s = sigmoid(self.x.value)
            self.x.grad += self.grad * s * (1 - s)
            return
        x, h = self.x.value, 1e-6
        self.x.grad += self.grad * (g["_late_helper"](x + h) - g["_late_helper"](x - h)) / (2 * h)
'''


def _attack_namespace(code: str) -> dict:
    ns = {k: getattr(reference, k) for k in dir(reference) if not k.startswith("__")}
    ns["np"] = np
    # the notebook's own helper, as in the notebooks: a student's module-level function
    exec(compile("def sigmoid(x):\n    return 1 / (1 + np.exp(-x))\n" + code, "<cell attack>", "exec"), ns)
    return ns


def _same_records(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same_records(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same_records(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b or (a != a and b != b)


@pytest.mark.parametrize("code", [CENTRAL, STENCIL, COMPLEX_STEP, FRESH_COMPONENT, SHIFTED_HELPER, HELPER_ON_VALUE,
                                  NUMERIC_LOOP, SWAPS_ITS_BACKWARD, ADDS_A_HELPER, *NUMERIC_DERIVATIVES.values()],
                         ids=["central", "stencil", "complex_step", "fresh_component", "shifted_helper",
                              "helper_on_value", "numeric_loop", "swaps_its_backward", "adds_a_helper",
                              *NUMERIC_DERIVATIVES])
def test_a_round_wrapped_once_gives_the_records_of_one_install_per_case(code):
    from grader.checks.forensics import forensics_probe_all

    assignment = "forward_mode" if code in NUMERIC_DERIVATIVES.values() else "tensor_edf"
    seen = []
    for test in _tests(assignment):
        if test["check"] == "mlp_accuracy" or (test.get("target") and test["target"] not in dir(reference)):
            continue
        specs = hidden.build_specs(test)
        ns_one = _attack_namespace(code)
        per_case = [forensics_probe(ns_one, s) for s in specs]
        ns_all = _attack_namespace(code)
        names, classes = dict(ns_all), {k: dict(vars(c)) for k, c in ns_all.items() if isinstance(c, type)}
        together = forensics_probe_all(ns_all, specs)
        _same_records(per_case, together)
        seen += [r.get("forensics") for r in together if isinstance(r, dict)]
        # nothing of the instrumentation is left behind (what the student's code added stays)
        assert ns_all.keys() == ns_one.keys() and all(ns_all[k] is v for k, v in names.items())
        assert {k: dict(vars(ns_all[k])) for k in classes} == classes
    gathered = any(any(v for v in ev.values() if v) for ev in seen if ev)
    assert seen
    if code is HELPER_ON_VALUE:
        assert not gathered
    elif code is not SWAPS_ITS_BACKWARD:  # the equivalence is what this test is about
        assert gathered
