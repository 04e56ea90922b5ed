"""Numerical differentiation written inline in NumPy calls is caught by construction.

A backward that copies the forward formula and differences it (``np.tanh(x + h)``) or takes
a complex step through it (``np.imag(np.tanh(x + 1e-20j))``) calls neither ``forward`` nor a
student helper: ``grader/checks/forensics_numpy.py`` watches NumPy's (and ``math``'s,
``cmath``'s) functions while a component's backward runs. Real notebooks built from the
source notebook, graded in one real ``backprop grade`` batch per assignment: each attack is
held for review with a reason naming the component and the call, the honest notebook and
correct code that calls ``np.tanh``/``np.exp``/``np.where`` in its backward are not flagged.
In-process: numpy is restored after every backward (one that raises too), and a correct
backward computes the same numbers watched or not.
"""
from __future__ import annotations

import cmath
import csv
import json
import math
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest

import reference
from grader.checks import hidden
from grader.checks.base import probe
from grader.checks.forensics import FORENSIC_CHECKS, forensics_probe, forensics_probe_all
from grader.checks.forensics_numpy import _WATCHED_MODULES
from grader.files import file_stem
from grader.grading import forensics, sample
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.runner import Limits

ISOLATION = os.environ.get("BACKPROP_ISOLATION") or None
OPTS = Options(limits=Limits(timeout=10.0, memory_bytes=1 << 30), budget=120.0)

UNARY = '''
class {cls}(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = {forward}

    def backward(self):
        x, h = self.x.value, {h}
        self.x.grad += self.grad * ({derivative})
'''


def unary(cls: str, forward: str, derivative: str, h: str = "1e-6") -> str:
    return UNARY.format(cls=cls, forward=forward, derivative=derivative, h=h)


ATTACKS = {  # name: (class, its code, test id, what the reason says)
    "inline_central": ("Tanh", unary("Tanh", "np.tanh(self.x.value)", "(np.tanh(x + h) - np.tanh(x - h)) / (2 * h)"),
                       "tanh", "Tanh.backward evaluates np.tanh at shifted inputs (a difference quotient in NumPy calls"),
    "inline_forward_difference": ("Tanh", unary("Tanh", "np.tanh(self.x.value)", "(np.tanh(x + h) - self.value) / h", "1e-8"),
                                  "tanh", "Tanh.backward evaluates np.tanh at shifted inputs (a difference quotient in NumPy"),
    "inline_one_sided": ("Exp", unary("Exp", "np.exp(self.x.value)", "(np.exp(x + h) - np.exp(x)) / h", "1e-8"),
                         "exp", "Exp.backward evaluates np.exp at shifted inputs (a difference quotient in NumPy calls"),
    "complex_tanh": ("Tanh", unary("Tanh", "np.tanh(self.x.value)", "np.imag(np.tanh(x + 1e-20j)) / 1e-20"),
                     "tanh", "Tanh.backward calls np.tanh with complex numbers (a complex step in NumPy calls"),
    "complex_sigmoid": ("Sigmoid", unary("Sigmoid", "sigmoid(self.x.value)",
                                         "np.imag(1 / (1 + np.exp(-(x + 1e-20j)))) / 1e-20"),
                        "sigmoid", "Sigmoid.backward calls np.exp with complex numbers (a complex step in NumPy calls"),
    "complex_log": ("Log", unary("Log", "np.log(self.x.value)", "np.imag(np.log(x + 1e-20j)) / 1e-20"),
                    "log", "Log.backward calls np.log with complex numbers (a complex step in NumPy calls"),
}
# correct, analytic, and calling NumPy's functions on the operands' values in backward
CORRECT = {
    "Tanh": unary("Tanh", "np.tanh(self.x.value)", "1 - np.tanh(self.x.value) ** 2"),
    "Exp": unary("Exp", "np.exp(self.x.value)", "np.exp(x)"),
    "Sigmoid": unary("Sigmoid", "sigmoid(self.x.value)", "np.exp(-x) / (1 + np.exp(-x)) ** 2"),
    "ReLU": unary("ReLU", "np.maximum(self.x.value, 0)", "np.where(x > 0, 1.0, 0.0)"),
    "Log": unary("Log", "np.log(self.x.value)", "np.reciprocal(x)"),
    "SoftmaxCrossEntropy": '''
class SoftmaxCrossEntropy(CompNode):
    def __init__(self, logits, labels):
        super().__init__()
        self.logits, self.labels = logits, labels

    def forward(self):
        z = self.logits.value - self.logits.value.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        self.value = np.asarray(-log_p[np.arange(len(z)), self.labels.value.astype(int)].mean())

    def backward(self):
        """softmax recomputed from the logits: exp(x - max)."""
        x = self.logits.value
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        p = e / np.sum(e, axis=-1, keepdims=True)
        p[np.arange(len(x)), self.labels.value.astype(int)] -= 1
        self.logits.grad += self.grad * p / len(x)
''',
}
SCALAR_ATTACKS = {
    "complex_numpy": (unary("Sigmoid", "sigmoid(self.x.value)", "np.imag(1 / (1 + np.exp(-(x + 1e-20j)))) / 1e-20"),
                      "Sigmoid.backward calls np.exp with complex numbers (a complex step in NumPy calls"),
    "complex_cmath": ("import cmath\n" + unary("Sigmoid", "sigmoid(self.x.value)",
                                               "(1 / (1 + cmath.exp(-(complex(x) + 1e-20j)))).imag / 1e-20"),
                      "Sigmoid.backward calls cmath.exp with complex numbers (a complex step in cmath calls"),
}


def _redefine(nb: dict, name: str, code: str) -> dict:
    """``code`` appended to the solution cell that defines ``name`` (a student's own version)."""
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and name in sample._defined(sample._src(c))
                and c.get("metadata", {}).get("nbgrader", {}).get("solution"))
    return sample.append_code(nb, cell["id"], code)


def _batch(course: Path, assignment: str, notebooks: dict, root: Path) -> tuple[dict, Path]:
    cls = root / "class"
    for name, nb in notebooks.items():
        sample.write(nb, cls / f"{name}.ipynb")
    grade(Request(path=cls, assignment=assignment, course=course, out=root / "out", workers=2,
                  options=OPTS, nbgrader=False, reports=True, isolation=ISOLATION))
    records = {r["student"]: r for r in json.loads((root / "out" / "results.json").read_text())}
    return records, root / "out"


def _review(rec: dict) -> list[str]:
    return [f for f in rec["flags"] if f.startswith("needs review: ")]


@pytest.fixture(scope="module")
def tensor(course, submitted_nb, tmp_path_factory):
    nbs = {"honest": submitted_nb}
    for name, (cls, code, _, _) in ATTACKS.items():
        nbs[name] = _redefine(submitted_nb, cls, code)
    correct = submitted_nb
    for cls, code in CORRECT.items():
        correct = _redefine(correct, cls, code)
    nbs["correct_numpy"] = correct
    return _batch(course, "tensor_edf", nbs, tmp_path_factory.mktemp("inline_tensor"))


@pytest.fixture(scope="module")
def scalar(tmp_path_factory):
    from grader.authoring.course import generate

    course = tmp_path_factory.mktemp("inline_course") / "course"
    generate(["scalar_backprop"], course)
    honest = sample.as_submitted(sample.source_notebook(course, "scalar_backprop"))
    nbs = {"honest": honest} | {name: _redefine(honest, "Sigmoid", code) for name, (code, _) in SCALAR_ATTACKS.items()}
    return _batch(course, "scalar_backprop", nbs, tmp_path_factory.mktemp("inline_scalar"))


def _held(rec: dict, test_id: str, reason: str) -> None:
    assert rec["status"] == "graded", rec
    flags = _review(rec)
    assert any(reason in f for f in flags), flags
    t = next(t for t in rec["tests"] if t["id"] == test_id)
    assert t["points"] == 0 and t["result"]["diagnosis"] == "needs_review", t
    assert t["result"]["details"]["judged"]["passed"]  # accurate enough: only the evidence catches it
    others = [t for t in rec["tests"] if t["id"] != test_id]  # the loop test may run the same backward
    assert all(t["points"] == t["max_points"] or t["result"]["diagnosis"] == "needs_review" for t in others), \
        [(t["id"], t["points"]) for t in others]


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_inline_numeric_backward_is_flagged_and_held(tensor, name):
    records, _ = tensor
    _, _, test_id, reason = ATTACKS[name]
    _held(records[name], test_id, reason)


@pytest.mark.parametrize("name", sorted(SCALAR_ATTACKS))
def test_inline_complex_step_in_scalar_backprop_is_flagged_and_held(scalar, name):
    records, _ = scalar
    _held(records[name], "sigmoid", SCALAR_ATTACKS[name][1])


def test_scalar_honest_is_not_flagged(scalar):
    records, _ = scalar
    rec = records["honest"]
    assert rec["total"] == rec["max"] and not _review(rec), rec["flags"]


@pytest.mark.parametrize("name", ["honest", "correct_numpy"])
def test_correct_backward_calling_numpy_is_not_flagged(tensor, name):
    records, _ = tensor
    rec = records[name]
    assert rec["total"] == rec["max"] and not _review(rec), rec["flags"]


def test_the_flag_reaches_the_gradebook_but_the_student_reads_a_neutral_note(tensor):
    records, out = tensor
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert "complex step in NumPy calls" in rows["complex_tanh"]["review"]
    assert "difference quotient in NumPy calls" in rows["inline_central"]["review"]
    assert rows["honest"]["review"] == "" and rows["correct_numpy"]["review"] == ""
    feedback = (out / "feedback" / f"{file_stem('complex_tanh')}.md").read_text()
    assert "reviewed by a TA" in feedback
    for word in ("complex step", "NumPy calls", "np.tanh", "numerical differentiation"):
        assert word not in feedback, word


# -- in-process: numpy restored, a correct backward's numbers unchanged -----------------------

def _suite(assignment: str) -> list[dict]:
    path = Path(reference.__file__).resolve().parent.parent / "assignments" / assignment / "suite.toml"
    return tomllib.loads(path.read_text())["test"]


def _reference_ns() -> dict:
    return {k: getattr(reference, k) for k in dir(reference) if not k.startswith("__")}


def _snapshot() -> list[dict]:
    return [dict(mapping) for mapping, _, _ in _WATCHED_MODULES]


def _unchanged(before: list[dict]) -> bool:
    """Every name the watched modules had is bound to the same object (a submodule imported
    lazily since, ``numpy.ma``, may be added)."""
    return all(all(now.get(k, now) is v for k, v in was.items())
               for was, (now, _, _) in zip(before, _WATCHED_MODULES))


def test_numpy_is_restored_after_a_backward_that_raises():
    class Tanh(reference.Tanh):
        def backward(self):
            np.tanh(self.x.value + 1e-20j)  # watched: the evidence is noted, then the backward fails
            raise RuntimeError("a student's bug")

    before = _snapshot()
    assert _unchanged(before) and np.tanh is before[0]["tanh"]
    ns = _reference_ns() | {"Tanh": Tanh}
    test = next(t for t in _suite("tensor_edf") if t["id"] == "tanh")
    specs = hidden.build_specs(test)
    records = [forensics_probe(ns, s) for s in specs] + forensics_probe_all(ns, specs)
    ran = [r for r in records if (r.get("error") or {}).get("message") == "a student's bug"]
    assert len(ran) >= len(specs)  # both runs: every case with a backward failed in it
    assert all(r["forensics"]["complex"].get("Tanh -> np.tanh") for r in ran)  # watched while it ran
    assert _unchanged(before)
    assert type(np.tanh) is np.ufunc and np.exp is before[0]["exp"] and math.exp is before[1]["exp"]
    assert cmath.exp is before[2]["exp"]


def test_numpy_is_restored_after_a_backward_that_rebinds_it():
    """A backward that stores its own np.exp: numpy is put back as it was before the backward."""
    class Exp(reference.Exp):
        def backward(self):
            np.exp = lambda x: 0 * x
            super().backward()

    before = _snapshot()
    test = next(t for t in _suite("tensor_edf") if t["id"] == "exp")
    for spec in hidden.build_specs(test):
        forensics_probe(_reference_ns() | {"Exp": Exp}, spec)
    assert _unchanged(before)


@pytest.mark.parametrize("assignment", ["tensor_edf", "scalar_backprop"])
def test_a_correct_backward_computes_the_same_watched_or_not(assignment):
    """The reference's records (gradients, values, diagnoses' inputs) are identical with and
    without the watch, and leave no evidence."""
    ns = _reference_ns()
    before = _snapshot()
    for test in _suite(assignment):
        if test["check"] not in FORENSIC_CHECKS or test.get("target", "Backward") not in ns:
            continue
        specs = hidden.build_specs(test)
        watched = forensics_probe_all(ns, specs)
        for spec, rec in zip(specs, watched):
            ev = rec.pop("forensics")
            assert not ev["complex"] and not ev["perturbed"], (test["id"], ev)
            plain = probe(ns, spec)
            assert json.dumps(rec, sort_keys=True, default=repr) == json.dumps(plain, sort_keys=True, default=repr)
    assert _unchanged(before)


def test_a_ufunc_method_works_while_watched():
    """``np.add.at``/``np.maximum.reduce`` in a backward reach the ufunc's own methods."""
    class ReLU(reference.ReLU):
        def backward(self):
            assert np.maximum.reduce(np.array([1.0, 3.0])) == 3.0
            g = np.zeros_like(self.x.grad)
            np.add.at(g, (slice(None),), self.grad * (self.x.value > 0))
            self.x.grad += g

    test = next(t for t in _suite("tensor_edf") if t["id"] == "relu")
    specs = hidden.build_specs(test)
    records = forensics_probe_all(_reference_ns() | {"ReLU": ReLU}, specs)
    found, hold, _ = forensics.examine(test, specs, records, forensics.reference_expectation)
    assert not any("error" in r for r in records) and found == [] and not hold


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_case_of_an_attack_carries_evidence_over_many_seeds(name):
    """Not a lucky draw: on 40 seeds, every case (scalar regimes included) has the evidence."""
    from reference import operations

    cls, code, test_id, _ = ATTACKS[name]
    ns = _reference_ns() | {"np": np, "sigmoid": operations.sigmoid}  # the notebook's sigmoid
    exec(code, ns)
    test = next(t for t in _suite("tensor_edf") if t["id"] == test_id)
    specs = hidden.build_specs(dict(test, hidden=dict(test["hidden"], seeds=list(range(40)))))
    records = forensics_probe_all(ns, specs)
    assert not any("error" in r for r in records)
    missed = [s["case"] for s, r in zip(specs, records) if not (r["forensics"]["complex"] or r["forensics"]["perturbed"])]
    assert not missed, missed
