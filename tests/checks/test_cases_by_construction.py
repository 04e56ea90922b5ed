"""Component and loop cases of tensor_edf and scalar_backprop: every case exercises every
declared region of its unit whatever the seed, a bug wrong on the whole domain fails every
case, the loop test of scalar_backprop charges only Backward, and the notebooks say what
their tests check (issue 14 items 2-6 for the component and backward-loop kinds).
"""
from __future__ import annotations

import ast
import copy
import inspect
import re

import numpy as np
import pytest

import reference
from grader.authoring.assignment import load_assignment
from grader.checks import hidden
from grader.checks import public as P
from grader.checks.contract import DOMAINS

from .conftest import ROOT, student_ns, suites

SUITES = suites()
COMPONENT_TESTS = [(a, t) for a in ("tensor_edf", "scalar_backprop") for t in SUITES[a] if t["check"] == "component"]


def with_seeds(test: dict, seeds) -> dict:
    t = copy.deepcopy(test)
    t["hidden"]["seeds"] = list(seeds)
    return t


def instances(spec: dict) -> list[dict]:
    return spec["parts"] if "parts" in spec else [spec]


# ----------------------------------------------------------------------------------
# Cases by construction
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("assignment,test", COMPONENT_TESTS, ids=lambda x: x if isinstance(x, str) else x["id"])
def test_every_case_holds_every_region_away_from_kinks(assignment, test):
    """Over 200 seeds, visible and hidden: each case (over its instances) holds a value in
    every declared region of its class, none closer than the region's bound to a kink; the
    upstream and prior grads are never ones and never near zero."""
    target = test["target"]
    regions = DOMAINS.get(target, {}).get("regions", {})
    for seed in range(200):
        t = with_seeds(test, [seed])
        for spec in hidden.build_specs(t, "hidden") + (hidden.build_specs(t, "visible") if seed == 0 else []):
            ordinary = [p for p in instances(spec) if not p.get("forward_only")]
            assert ordinary, "a case must judge backward on ordinary inputs"
            for p in ordinary:
                up = np.asarray(p["upstream"])
                assert np.all(np.abs(up) >= 0.5) and not np.any(up == 1.0)
                for k, prior in enumerate(p["prior"]):
                    if k not in p["labels"]:
                        assert np.all(np.abs(prior) >= 0.5)
            if len(regions) > 1:
                seen = np.concatenate([np.ravel(p["operands"][0]) for p in ordinary])
                for name, (lo, hi) in regions.items():
                    assert np.any((seen >= lo) & (seen <= hi)), (seed, spec["case"], name)
                for kink in DOMAINS[target]["kinks"]:
                    assert np.min(np.abs(seen - kink)) >= 0.1


def test_zero_d_cases_are_one_instance_per_region():
    spec = P.component_specs("ReLU", [[()]], seed=3)[0]
    assert [p["regime"] for p in spec["parts"]] == ["x < -1", "-1 < x < 0", "0 < x < 1", "x > 1"]
    values = [float(p["operands"][0]) for p in spec["parts"]]
    assert values[0] < -1 < values[1] < 0 < values[2] < 1 < values[3]


# ----------------------------------------------------------------------------------
# Bugs wrong on the whole domain: every case fails, under several seed sets
# ----------------------------------------------------------------------------------

RELU = "class ReLU(CompNode):\n    def __init__(self, x):\n        super().__init__()\n        self.x = x\n"
WHOLE_DOMAIN_BUGS = {
    "relu_backward_noop": ("ReLU", RELU + "    def forward(self):\n        self.value = np.maximum(self.x.value, 0)\n"
                                          "    def backward(self):\n        pass\n"),
    "relu_pass_through": ("ReLU", RELU + "    def forward(self):\n        self.value = np.maximum(self.x.value, 0)\n"
                                         "    def backward(self):\n        self.x.grad += self.grad\n"),
    "relu_forward_only": ("ReLU", RELU + "    def forward(self):\n        self.value = np.maximum(self.x.value, 0)\n"
                                         "    def backward(self):\n        raise NotImplementedError()\n"),
    "log_sign_error": ("Log", "class Log(CompNode):\n    def __init__(self, x):\n        super().__init__()\n"
                              "        self.x = x\n    def forward(self):\n        self.value = np.log(self.x.value)\n"
                              "    def backward(self):\n        self.x.grad -= self.grad / self.x.value\n"),
    "tanh_one_minus_tanh": ("Tanh", "class Tanh(CompNode):\n    def __init__(self, x):\n        super().__init__()\n"
                                    "        self.x = x\n    def forward(self):\n        self.value = np.tanh(self.x.value)\n"
                                    "    def backward(self):\n        self.x.grad += self.grad * (1 - self.value)\n"),
    "sigmoid_backward_noop": ("Sigmoid", "class Sigmoid(CompNode):\n    def __init__(self, x):\n        super().__init__()\n"
                                         "        self.x = x\n    def forward(self):\n"
                                         "        self.value = 0.5 + 0.5 * np.tanh(0.5 * self.x.value)\n"
                                         "    def backward(self):\n        pass\n"),
}


@pytest.mark.parametrize("bug", list(WHOLE_DOMAIN_BUGS))
@pytest.mark.parametrize("assignment", ["tensor_edf", "scalar_backprop"])
def test_bug_wrong_everywhere_fails_every_case(assignment, bug):
    target, source = WHOLE_DOMAIN_BUGS[bug]
    tests = [t for t in SUITES[assignment] if t.get("target") == target and t["check"] == "component"]
    if not tests:
        pytest.skip(f"{assignment} has no {target}")
    ns = student_ns(source)
    for k in range(6):
        test = with_seeds(tests[0], [hash_seed(bug, k), hash_seed(bug, k + 100)])
        result = hidden.run_hidden(ns, test)
        assert result.score == 0.0, (k, result.message)
        public = P.run_public(ns, test, "visible")
        assert public.score == 0.0, public.message


def hash_seed(name: str, k: int) -> int:
    return (sum(map(ord, name)) * 7919 + k * 104729) % (2 ** 31)


# ----------------------------------------------------------------------------------
# Stability and precision: their own messages
# ----------------------------------------------------------------------------------

PLAIN_SIGMOID = ("class Sigmoid(CompNode):\n    def __init__(self, x):\n        super().__init__()\n        self.x = x\n"
                 "    def forward(self):\n        self.value = 1 / (1 + np.exp(-self.x.value))\n"
                 "    def backward(self):\n        self.x.grad += self.grad * self.value * (1 - self.value)\n")
FLOAT32_SIGMOID = PLAIN_SIGMOID.replace("1 / (1 + np.exp(-self.x.value))",
                                        "(0.5 + 0.5 * np.tanh(0.5 * self.x.value)).astype(np.float32)")


@pytest.mark.parametrize("assignment", ["tensor_edf", "scalar_backprop"])
def test_plain_sigmoid_fails_only_the_large_input_case_with_an_overflow_message(assignment):
    test = next(t for t in SUITES[assignment] if t["id"] == "sigmoid")
    ns = student_ns(PLAIN_SIGMOID)
    for which, run in (("hidden", hidden.run_hidden), ("visible", lambda n, t: P.run_public(n, t, "visible"))):
        result = run(ns, test)
        cases = result.details["cases"]
        seeds = len(test["hidden"]["seeds"]) if which == "hidden" else 1
        assert not result.passed and result.diagnosis == "non_finite"
        assert result.details["cases_passed"] == cases - seeds  # one large-input case per seed
        assert "overflow" in result.message and "large inputs" in result.message
        assert result.details["component"] == "Sigmoid"


def test_reference_raises_no_floating_point_error_on_large_inputs(ref_ns):
    for name in ("Sigmoid", "Tanh", "Log", "SoftmaxCrossEntropy"):
        shapes = [[(4, 3), (4,)]] if name == "SoftmaxCrossEntropy" else [[(4, 3)], [()]]
        assert P.check_component(ref_ns, name, shapes=shapes, seed=1).passed


def test_float32_sigmoid_is_told_to_compute_in_float64():
    ns = student_ns(FLOAT32_SIGMOID)
    test = next(t for t in SUITES["tensor_edf"] if t["id"] == "sigmoid")
    for result in (hidden.run_hidden(ns, test), P.run_public(ns, test, "visible"),
                   P.check_backward(ns, graph="shared_subexpr", seed=0)):
        assert result.diagnosis == "low_precision", result.message
        assert "float32" in result.message and "float64" in result.message
        assert result.details["component"] == "Sigmoid"
        assert "derive the local derivative" not in result.message


def test_reduction_with_a_0d_grad_is_not_told_to_sum_over_broadcast_axes():
    source = ("class Sum(CompNode):\n    def __init__(self, x):\n        super().__init__()\n        self.x = x\n"
              "    def forward(self):\n        self.value = np.asarray(np.sum(self.x.value))\n"
              "    def backward(self):\n        self.x.grad = self.grad\n")
    ns = student_ns(source)
    for result in (P.check_component(ns, "Sum", shapes=[[(4, 3)]], seed=0),
                   P.check_backward(ns, graph="shared_subexpr", seed=0)):
        assert result.diagnosis == "grad_shape", result.message
        assert "broadcast" not in result.message


def test_bias_left_unsummed_is_still_told_so():
    source = ("class Add(CompNode):\n    def __init__(self, a, b):\n        super().__init__()\n"
              "        self.a, self.b = a, b\n    def forward(self):\n        self.value = self.a.value + self.b.value\n"
              "    def backward(self):\n        self.a.grad = self.a.grad + self.grad\n"
              "        self.b.grad = self.b.grad + self.grad\n")
    result = P.check_component(student_ns(source), "Add", shapes=[[(4, 3), (3,)]], seed=0)
    assert result.diagnosis == "bias_not_summed", result.message


# ----------------------------------------------------------------------------------
# The loop test of scalar_backprop: the grader's stand-ins, Backward alone
# ----------------------------------------------------------------------------------

BACKWARD = next(t for t in SUITES["scalar_backprop"] if t["id"] == "backward")
BROKEN_COMPONENTS = (
    "class Add(CompNode):\n    def __init__(self, a, b):\n        super().__init__()\n        self.a, self.b = a, b\n"
    "    def forward(self):\n        self.value = self.a.value - self.b.value\n"
    "    def backward(self):\n        pass\n"
    "class Mul(CompNode):\n    def __init__(self, a, b):\n        super().__init__()\n        self.a, self.b = a, b\n"
    "    def forward(self):\n        raise NotImplementedError()\n"
    "    def backward(self):\n        raise NotImplementedError()\n")


def test_loop_test_uses_only_standins_and_charges_no_component_bug():
    for which in ("visible", "hidden"):
        for spec in hidden.build_specs(BACKWARD, which):
            kinds = {n["kind"] for n in spec["nodes"]}
            assert kinds <= {"Input", "Parameter", "Affine1", "Affine2"}
            assert {"Input", "Parameter"} <= kinds
            args = [a for n in spec["nodes"] for a in n["args"]]
            assert any(args.count(a) > 1 for a in args), "a node with several consumers"
    ns = student_ns(BROKEN_COMPONENTS, drop=("Square", "Sigmoid", "ReLU"))
    assert hidden.run_hidden(ns, BACKWARD).passed
    assert P.run_public(ns, BACKWARD, "visible").passed


@pytest.mark.parametrize("source,diagnosis", [
    ("def Backward(loss):\n    loss.grad = np.ones_like(loss.value, dtype=float)\n"
     "    for c in reversed(components):\n        c.backward()\n", "grads_not_zeroed"),
    ("def Backward(loss):\n    for n in components + params + inputs:\n        n.grad = np.zeros(np.shape(n.value))\n"
     "    for c in reversed(components):\n        c.backward()\n", "loss_not_seeded"),
    ("def Backward(loss):\n    for n in components + params + inputs:\n        n.grad = np.zeros(np.shape(n.value))\n"
     "    loss.grad = np.ones_like(loss.grad)\n    for c in components:\n        c.backward()\n", "wrong_order"),
    ("def Backward(loss):\n    for n in components + inputs:\n        n.grad = np.zeros(np.shape(n.value))\n"
     "    loss.grad = np.ones_like(loss.grad)\n    for c in reversed(components):\n        c.backward()\n",
     "grads_not_zeroed"),
    ("def Backward(loss):\n    for n in components + params + inputs:\n        n.grad = np.zeros(np.shape(n.value))\n"
     "    loss.grad = np.ones_like(loss.grad)\n    for c in reversed(components[1:]):\n        c.backward()\n",
     "wrong_order"),
])
def test_loop_bugs_fail_every_standin_graph(source, diagnosis):
    ns = student_ns(source)
    result = hidden.run_hidden(ns, BACKWARD)
    assert result.score == 0.0 and result.diagnosis == diagnosis, result.message
    assert P.run_public(ns, BACKWARD, "visible").diagnosis == diagnosis


def test_standin_classes_subclass_the_students_compnode_and_are_no_graded_unit():
    from grader.checks.backward_loop import standin_class
    from grader.checks.bundle import bundle

    cls = standin_class(reference.CompNode, "Affine2")
    reference.clear_compgraph()
    a, b = reference.Input(np.asarray(2.0)), reference.Input(np.asarray(3.0))
    c = cls(a, b, coef=[0.5, -1.5, 2.0])
    assert reference.components == [c]
    reference.clear_compgraph()
    text = bundle(["backward_loop"])
    graded = {"Add", "Mul", "Square", "Sigmoid", "ReLU", "Exp", "Log", "Tanh", "VDot", "Sum", "Mean", "MSE",
              "SoftmaxCrossEntropy"}
    defined = {n.name for n in ast.walk(ast.parse(text)) if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    assert not defined & graded


def test_tensor_edf_loop_test_is_a_zero_point_diagnostic_naming_the_component():
    test = next(t for t in SUITES["tensor_edf"] if t["id"] == "backward_mlp2")
    assert test["points"] == 0
    assert sum(t["points"] for t in SUITES["tensor_edf"]) == 26
    source = ("class Add(CompNode):\n    def __init__(self, a, b):\n        super().__init__()\n"
              "        self.a, self.b = a, b\n    def forward(self):\n        self.value = self.a.value + self.b.value\n"
              "    def backward(self):\n        self.a.grad -= unbroadcast(self.grad, self.a.value.shape)\n"
              "        self.b.grad += unbroadcast(self.grad, self.b.value.shape)\n")
    result = hidden.run_hidden(student_ns(source), test)
    assert not result.passed and result.details["component"] == "Add" and "Add.backward" in result.message


# ----------------------------------------------------------------------------------
# No false failure of the reference, numerically, over many seeds
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("assignment", ["tensor_edf", "scalar_backprop"])
def test_reference_passes_component_and_loop_tests_numerically_over_many_seeds(assignment, ref_ns):
    for test in SUITES[assignment]:
        if test["check"] not in ("component", "backward_loop"):
            continue
        for seed in range(40):
            t = copy.deepcopy(test)
            t["visible"] = {**t["hidden"], "seeds": [seed]}
            result = P.run_public(ref_ns, t, "visible")
            assert result.passed, (test["id"], seed, result.message)


# ----------------------------------------------------------------------------------
# Notebooks and suites agree
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("assignment", ["tensor_edf", "scalar_backprop"])
def test_intro_table_points_match_the_suite(assignment):
    """The intro table's points are markers filled in from suite.toml: each row's marker must
    name the tests of the units the row names (the rendered numbers are those units' points)."""
    from grader.authoring.assignment import load_assignment
    from grader.authoring.checks import render_points
    template = (ROOT / "assignments" / assignment / f"{assignment}.py").read_text()
    text = render_points(template, load_assignment(assignment).tests, assignment)
    by_target = {}
    for t in SUITES[assignment]:
        by_target.setdefault(t.get("target"), t["points"])
    rows = re.findall(r"^# \| \d+ \| (.*) \| ([\d +]+) \|$", text, flags=re.M)
    assert rows
    total = 0
    for what, points in rows:
        names = list(dict.fromkeys(re.split(r"[.(]", n)[0] for n in re.findall(r"`([^`]+)`", what)))
        names = [n for n in names if n in by_target]
        numbers = [float(p) for p in points.split("+")]
        assert [by_target[n] for n in names] == numbers, (what, points)
        total += sum(numbers)
    assert total == sum(t["points"] for t in SUITES[assignment])


def _function_dumps(source: str) -> dict:
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            body = node.body[1:] if (node.body and isinstance(node.body[0], ast.Expr)
                                     and isinstance(node.body[0].value, ast.Constant)) else node.body
            out[node.name] = ast.dump(ast.Module(body=body, type_ignores=[]))
    return out


def test_scalar_backprop_gives_no_tensor_edf_solution_and_still_works():
    given = "\n".join(c.source for c in load_assignment("scalar_backprop").cells if c.role == "given")
    mine = _function_dumps(given)
    graded = {**_function_dumps(inspect.getsource(reference.core.unbroadcast)),
              **_function_dumps(inspect.getsource(reference.operations.sigmoid))}
    for name, dump in graded.items():
        assert mine.get(name) != dump, f"scalar_backprop's given cells hold tensor_edf's graded {name}"
    ns = {}
    a = load_assignment("scalar_backprop")
    for c in a.cells:
        if c.role in ("given", "solution"):
            exec(compile(c.source, c.id, "exec"), ns)
    for t in SUITES["scalar_backprop"]:
        result = hidden.run_hidden(ns, t)
        assert result.passed, (t["id"], result.message)
    with pytest.raises(ValueError, match="scalar"):
        ns["unbroadcast"](np.ones(3), ())


def test_nonzero_domain_override_draws_both_signs():
    values = np.concatenate([np.ravel(s["operands"][0]) for s in
                             P.component_specs("ReLU", [[(7, 5)], [(6,)]], seed=1237, domain="nonzero")])
    assert np.any(values < 0) and np.any(values > 0) and np.min(np.abs(values)) >= 0.1
