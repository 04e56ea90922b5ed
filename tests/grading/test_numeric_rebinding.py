"""A numerical backward that is not the one the harness wrapped is still not silent.

``forensics_probe`` counts forward calls while a component's ``backward`` runs by wrapping
the ``backward`` the classes define when a test starts. These attacks put another function
in its place while the test runs: on the class (``type(self).backward = ...``, ``setattr``),
on the instance (``self.backward = ...``), or in ``forward`` and put back after use, so that
the wrapper no longer runs. The dispatch is checked while the test runs (at every forward,
after every wrapped backward, at the end of every case): a replaced ``forward``/``backward``
is evidence of its own ("replaced while being graded"), held for a TA like a counted forward
call. A backward that differences a module-level copy of the formula leaves no forward call:
it is caught as a helper evaluated at shifted inputs; one that does the whole difference
inside one helper is seen by the precision fingerprint only (README, "Numerical
differentiation"). Real notebooks, one real ``backprop grade`` batch.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from grader.files import file_stem
from grader.grading.batch import format_summary
from tests.grading.test_numeric_differentiation import _batch, _held, _redefine, _review

SIGMOID_HEAD = '''
import types


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)
'''
ANALYTIC = '''
        s = sigmoid(self.x.value)
        self.x.grad += self.grad * s * (1 - s)
'''
CENTRAL_BACKWARD = '''

def _numeric_backward(self):
    """x_bar by central differences of the component's own forward."""
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
COMPLEX_BACKWARD = '''

def _complex_backward(self):
    """The complex step: exact to rounding, no precision fingerprint."""
    x, h = self.x.value.copy(), 1e-20
    self.x.value = x + 1j * h
    self.forward()
    d = np.imag(self.value) / h
    self.x.value = x
    self.forward()
    self.x.grad += self.grad * d
'''

# (a) the class's backward replaced on the first call (analytic then, numeric from then on)
CLASS_SWAP = SIGMOID_HEAD + '''
    def backward(self):
        type(self).backward = _numeric_backward''' + ANALYTIC + CENTRAL_BACKWARD
# (b) the instance's backward replaced on the first call
INSTANCE_SWAP = SIGMOID_HEAD + '''
    def backward(self):
        self.backward = types.MethodType(_numeric_backward, self)''' + ANALYTIC + CENTRAL_BACKWARD
# (c) a complex-step backward installed lazily on the class, with setattr (on Exp: the
# notebook's sigmoid is not complex-safe)
LAZY_COMPLEX = '''
class Exp(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.exp(self.x.value)

    def backward(self):
        setattr(type(self), "backward", _complex_backward)
        self.x.grad += self.grad * self.value
''' + COMPLEX_BACKWARD
# (a') the class's backward replaced by forward, and put back by the numeric backward itself:
# nothing is left changed when a case ends
SWAP_AND_RESTORE = '''
import types


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)
        if type(self).__dict__["backward"] is not _numeric_once:
            _saved.append(type(self).__dict__["backward"])
            type(self).backward = _numeric_once

    def backward(self):''' + ANALYTIC + CENTRAL_BACKWARD + '''

_saved = []


def _numeric_once(self):
    type(self).backward = _saved.pop()
    _numeric_backward(self)
'''
# (d) a module-level copy of the forward formula, differenced at x + h and x - h
FORMULA_COPY = '''
def _sigmoid_copy(v):
    return 1 / (1 + np.exp(-v))


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)

    def backward(self):
        x, h = self.x.value, 1e-6
        self.x.grad += self.grad * (_sigmoid_copy(x + h) - _sigmoid_copy(x - h)) / (2 * h)
'''
# (d') the whole difference quotient inside one module-level function: it is called at x itself
SLOPE_COPY = '''
def _sigmoid_slope(v, h):
    return (1 / (1 + np.exp(-(v + h))) - 1 / (1 + np.exp(-(v - h)))) / (2 * h)


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)

    def backward(self):
        self.x.grad += self.grad * _sigmoid_slope(self.x.value, 1e-5)
'''
# (e) backward as a property: what the instance's attribute gives is the numeric backward
PROPERTY_BACKWARD = SIGMOID_HEAD + '''
    @property
    def backward(self):
        return types.MethodType(_numeric_backward, self)
''' + CENTRAL_BACKWARD
# (f) the class's own attribute lookup hands out the numeric backward
OWN_LOOKUP = SIGMOID_HEAD + '''
    def backward(self):''' + ANALYTIC + '''
    def __getattribute__(self, name):
        if name == "backward":
            return types.MethodType(_numeric_backward, self)
        return object.__getattribute__(self, name)
''' + CENTRAL_BACKWARD
# (g) the forward called through a module-level alias taken before grading (on Tanh: its
# forward calls no helper that could be seen at shifted inputs)
FORWARD_ALIAS = '''
class Tanh(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.tanh(self.x.value)

    def backward(self):
        x, h, vals = self.x.value.copy(), 1e-5, []
        for k in (1, -1):
            self.x.value = x + k * h
            _tanh_forward(self)
            vals.append(self.value)
        self.x.value = x
        _tanh_forward(self)
        self.x.grad += self.grad * (vals[0] - vals[1]) / (2 * h)


_tanh_forward = Tanh.forward
'''
ATTACKS = {"class_swap": CLASS_SWAP, "instance_swap": INSTANCE_SWAP, "lazy_complex_step": LAZY_COMPLEX,
           "swap_and_restore": SWAP_AND_RESTORE, "formula_copy": FORMULA_COPY, "slope_copy": SLOPE_COPY,
           "property_backward": PROPERTY_BACKWARD, "own_lookup": OWN_LOOKUP, "forward_alias": FORWARD_ALIAS}


@pytest.fixture(scope="module")
def graded(course, submitted_nb, tmp_path_factory):
    nbs = {"honest": submitted_nb}
    target = {LAZY_COMPLEX: "Exp", FORWARD_ALIAS: "Tanh"}
    nbs.update({name: _redefine(submitted_nb, target.get(code, "Sigmoid"), code) for name, code in ATTACKS.items()})
    return _batch(course, "tensor_edf", nbs, tmp_path_factory.mktemp("numdiff_rebinding"))


def test_honest_work_is_not_flagged(graded):
    _, records, _ = graded
    rec = records["honest"]
    assert rec["status"] == "graded" and rec["total"] == rec["max"] and not _review(rec), rec["flags"]


@pytest.mark.parametrize("name, test_id, reason", [
    ("class_swap", "sigmoid", "Sigmoid.backward was replaced while being graded"),
    ("instance_swap", "sigmoid", "Sigmoid.backward was replaced while being graded"),
    ("lazy_complex_step", "exp", "Exp.backward was replaced while being graded"),
    ("swap_and_restore", "sigmoid", "Sigmoid.backward was replaced while being graded"),
    ("formula_copy", "sigmoid", "Sigmoid.backward evaluates _sigmoid_copy at shifted inputs"),
    ("property_backward", "sigmoid", "Sigmoid.backward calls forward (numerical differentiation?)"),
    ("own_lookup", "sigmoid", "Sigmoid defines its own __getattribute__"),
    ("forward_alias", "tanh", "Tanh.backward calls forward (numerical differentiation?)"),
])
def test_a_replaced_or_copied_forward_is_flagged_and_its_points_held(graded, name, test_id, reason):
    _, records, _ = graded
    rec = records[name]
    assert rec["status"] == "graded", rec
    flags = _review(rec)
    assert any(reason in f for f in flags), flags
    t = _held(rec, test_id)
    assert t["points"] == 0 and t["result"]["diagnosis"] == "needs_review", t
    assert t["result"]["details"]["judged"]["passed"]  # accurate enough: only the evidence catches it


def test_the_complex_step_leaves_no_fingerprint_only_the_evidence(graded):
    _, records, _ = graded
    flag = next(f for f in _review(records["lazy_complex_step"]) if "replaced while being graded" in f)
    assert "typical of finite differences" not in flag, flag


def test_a_difference_inside_one_helper_is_seen_by_the_fingerprint_only(graded):
    """The documented limit: no forward call, no helper at shifted inputs; the precision
    fingerprint flags it, its points kept."""
    _, records, _ = graded
    rec = records["slope_copy"]
    flags = _review(rec)
    assert any("Sigmoid: gradients only as precise as finite differences" in f and "points kept" in f
               for f in flags), flags
    assert rec["total"] == rec["max"]


def test_flags_reach_the_gradebook_the_report_and_the_summary_but_not_the_student(graded):
    summary, records, out = graded
    assert "class_swap" in summary["review"] and "honest" not in summary["review"]
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert "replaced while being graded" in rows["instance_swap"]["review"]
    assert rows["honest"]["review"] == ""
    assert "lazy_complex_step" in format_summary(summary)
    report = Path(summary["outputs"]["report"]).read_text()
    assert "replaced while being graded" in report
    feedback = (out / "feedback" / f"{file_stem('class_swap')}.md").read_text()
    assert "reviewed by a TA" in feedback
    assert "replaced" not in feedback and "numerical differentiation" not in feedback
