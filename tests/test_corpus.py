"""The mutation corpus against the grader's checks.

Every buggy variant (tests/corpus/buggy) must fail the checks that exercise it with
exactly the diagnosis in its ``EXPECT``, and the failure report must name its
component (and the reverse step, for loop checks). Every correct variant
(tests/corpus/correct) must pass every check that applies, over 50 seeds.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import base_namespace, iter_variants, load_variant, notebook_source  # noqa: E402

from grader.authoring.template import tomllib  # noqa: E402
from grader.checks.contract import SHAPES as CONTRACT_SHAPES  # noqa: E402


def _suite(name: str) -> list[dict]:
    with open(Path(__file__).resolve().parents[1] / "assignments" / name / "suite.toml", "rb") as f:
        return tomllib.load(f)["test"]

public = pytest.importorskip("grader.checks.public", reason="grader/checks/public.py not written yet")
try:
    from grader.checks import hidden
except ImportError:  # the trusted part lands separately
    hidden = None

BUGGY = list(iter_variants("buggy"))
CORRECT = list(iter_variants("correct"))
# the component classes graded by a `component` test of the assignments the corpus's
# notebooks stand for (a class added to their suites joins by itself)
COMPONENTS = tuple(dict.fromkeys(t["target"] for name in ("scalar_backprop", "tensor_edf")
                                 for t in _suite(name) if t["check"] == "component"))
CODE_DIAGNOSES = ("forward_wrong", "non_finite", "operand_mutated", "grad_shape", "bias_not_summed",
                  "matmul_transposed", "upstream_ignored", "assign_not_accumulate", "sign_error",
                  "wrong_factor", "loss_not_seeded", "grads_not_zeroed", "wrong_order", "not_implemented",
                  "exception", "missing")
SEEDS = range(50)
HIDDEN_SEEDS = range(1000, 1010)  # the reference comparison is exact; fewer seeds keep it quick

# Operand shapes per case: batch, broadcast (a bias (O,) against (N, O)), vectors and 0-d;
# VDot's square case first, where a transposed gradient still has the right shape.
SHAPES = {
    "Add": [[(4, 3), (4, 3)], [(4, 3), (3,)], [(), ()]],
    "Mul": [[(4, 3), (4, 3)], [(4, 3), (3,)], [(), ()]],
    "VDot": [[(4, 4), (4, 4)], [(4, 3), (3, 5)], [(3,), (3, 5)]],
    "SoftmaxCrossEntropy": [[(4, 3), (4,)], [(6, 5), (6,)]],
    "MSE": [[(4, 3), (4, 3)], [(5,), (5,)]],
    "Sum": [[(4, 3)], [(5,)]],
    "Mean": [[(4, 3)], [(5,)]],
}
for _name in ("Square", "Exp", "Log", "Sigmoid", "Tanh", "ReLU"):
    SHAPES[_name] = [[(4, 3)], [()]]
for _name in COMPONENTS:  # a class without curated cases: its declared default cases
    SHAPES.setdefault(_name, [list(case) for case in CONTRACT_SHAPES[_name]])

# Loop-check set-ups: (graph, classes the graph may use). Random graphs are drawn from classes.
SETUPS = {
    "x_times_x_plus_1": ("x_times_x_plus_1", None),
    "relu_affine": ("relu_affine", None),
    "mlp2": ("mlp2", None),
    "mlp2_tanh": ("mlp2", ("VDot", "Add", "Tanh", "SoftmaxCrossEntropy")),
    "shared_subexpr": ("shared_subexpr", None),
    "random_exp": ("random:6", ("Exp", "Add", "Mul", "Sum")),
    "random_log": ("random:6", ("Exp", "Log", "Add", "Mul", "Sum")),
    "random_mean": ("random:6", ("Add", "Mul", "Square", "Mean")),
    "random_mul": ("random:8", ("Mul", "Sum")),
}
RANDOM_SEEDS = range(5)  # a random set-up must show the bug on one of these and never misdiagnose
BACKWARD_PHASE = ("grad_shape", "bias_not_summed", "matmul_transposed", "upstream_ignored",
                  "assign_not_accumulate", "sign_error", "wrong_factor", "wrong_gradient", "not_implemented")


def defined_names(variant):
    return [n.name for n in ast.parse(variant.path.read_text()).body
            if isinstance(n, (ast.ClassDef, ast.FunctionDef))]


def components_of(variant):
    return [n for n in defined_names(variant) if n in COMPONENTS]


def setup_uses(setup, seed, kind):
    graph, classes = SETUPS[setup]
    return any(n["kind"] == kind for n in public.build_graph(graph, seed, classes)["nodes"])


def run_loop(ns, setup, seed):
    graph, classes = SETUPS[setup]
    return public.check_backward(ns, graph=graph, seed=seed, classes=classes)


def names_component(result, component):
    return result.details.get("component") == component or component in result.message


def report(result):
    return f"{result.diagnosis}: {result.message}"


# ----------------------------------------------------------------------------------
# The corpus itself
# ----------------------------------------------------------------------------------

def test_corpus_covers_every_code_and_component():
    assert len(BUGGY) >= 40 and len(CORRECT) >= 15
    assert {v.expect["diagnosis"] for v in BUGGY} >= set(CODE_DIAGNOSES)
    assert {v.expect["component"] for v in BUGGY} >= set(COMPONENTS) | {"Backward"}
    assert {v.expect["diagnosis"] for v in BUGGY} <= set(public.DIAGNOSES)
    assert all(v.expect is None for v in CORRECT)
    assert all(v.doc for v in BUGGY + CORRECT)


@pytest.mark.parametrize("variant", BUGGY + CORRECT, ids=lambda v: f"{v.kind}/{v.name}")
def test_variant_namespace_shares_the_reference_graph_lists(variant):
    from reference import core
    ns, expect = load_variant(variant.path)
    assert ns["components"] is core.components and ns["params"] is core.params and ns["inputs"] is core.inputs
    assert "EXPECT" not in ns and expect == variant.expect
    for name in defined_names(variant):
        assert ns[name].__module__ == ns["__name__"]  # the variant's definition, not the reference's
    if expect and expect["diagnosis"] == "missing":
        assert expect["component"] not in ns


@pytest.mark.parametrize("variant", BUGGY + CORRECT, ids=lambda v: f"{v.kind}/{v.name}")
def test_notebook_source_runs_after_the_given_cells(variant):
    src = notebook_source(variant.path)
    assert "from reference" not in src and "import reference" not in src and "EXPECT" not in src
    assert variant.doc not in src
    ns = base_namespace()
    if variant.expect and variant.expect["diagnosis"] == "missing":
        ns.pop(variant.expect["component"])
    exec(compile(src, f"<notebook {variant.name}>", "exec"), ns)
    for name in defined_names(variant):
        assert name in ns


# ----------------------------------------------------------------------------------
# Buggy variants: the right diagnosis, component and step
# ----------------------------------------------------------------------------------

COMPONENT_BUGS = [v for v in BUGGY if v.expect["component"] in COMPONENTS]
LOOP_BUGS = [(v, s) for v in BUGGY
             for s in (v.expect.get("graphs", list(SETUPS)) if v.expect["component"] == "Backward"
                       else v.expect.get("graphs", []))]


@pytest.mark.parametrize("variant", COMPONENT_BUGS, ids=lambda v: v.name)
def test_buggy_component_check(variant):
    ns, expect = load_variant(variant.path)
    comp = expect["component"]
    result = public.check_component(ns, comp, shapes=SHAPES[comp], seed=0)
    assert not result.passed
    assert result.diagnosis == expect["diagnosis"], report(result)
    assert names_component(result, comp), report(result)


@pytest.mark.parametrize("variant,setup", LOOP_BUGS, ids=lambda x: getattr(x, "name", x))
def test_buggy_loop_check(variant, setup):
    ns, expect = load_variant(variant.path)
    comp, code = expect["component"], expect["diagnosis"]
    randomised = SETUPS[setup][0].startswith("random:")
    failed = 0
    for seed in RANDOM_SEEDS if randomised else range(3):
        if randomised and comp != "Backward" and not setup_uses(setup, seed, comp):
            continue
        result = run_loop(ns, setup, seed)
        if result.passed and randomised:
            continue  # this random graph does not exercise the bug
        assert not result.passed, f"seed {seed}: passed"
        assert result.diagnosis == code, f"seed {seed}: {report(result)}"
        assert names_component(result, comp), f"seed {seed}: {report(result)}"
        if comp != "Backward" and code in BACKWARD_PHASE:
            assert re.search(r"reverse step \d+", result.message), f"seed {seed}: {report(result)}"
            assert f"{comp}.backward" in result.message, f"seed {seed}: {report(result)}"
        if comp == "Backward" and code in ("wrong_order", "loss_not_seeded", "grads_not_zeroed", "grad_shape"):
            assert "step" in result.details or "second call" in result.message, f"seed {seed}: {report(result)}"
        failed += 1
    assert failed, "the bug never showed on this set-up"


@pytest.mark.skipif(hidden is None, reason="grader/checks/hidden.py not written yet")
@pytest.mark.parametrize("variant", COMPONENT_BUGS, ids=lambda v: v.name)
def test_buggy_hidden_component(variant):
    ns, expect = load_variant(variant.path)
    comp = expect["component"]
    test = {"id": comp.lower(), "points": 1, "check": "component", "target": comp,
            "hidden": {"seeds": [7211, 9043], "shapes": [[list(s) for s in case] for case in SHAPES[comp]]}}
    result = hidden.run_hidden(ns, test)
    assert not result.passed
    assert result.diagnosis == expect["diagnosis"], report(result)
    assert names_component(result, comp), report(result)


def hidden_loop_test(setup, seeds):
    graph, classes = SETUPS[setup]
    test = {"id": f"loop_{setup}", "points": 1, "check": "backward_loop", "target": "Backward",
            "hidden": {"seeds": list(seeds), "graphs": [graph]}}
    if classes:
        test["classes"] = list(classes)
    return test


@pytest.mark.skipif(hidden is None, reason="grader/checks/hidden.py not written yet")
@pytest.mark.parametrize("variant,setup", LOOP_BUGS, ids=lambda x: getattr(x, "name", x))
def test_buggy_hidden_loop(variant, setup):
    ns, expect = load_variant(variant.path)
    randomised = SETUPS[setup][0].startswith("random:")
    result = hidden.run_hidden(ns, hidden_loop_test(setup, RANDOM_SEEDS if randomised else range(3)))
    assert not result.passed
    assert result.diagnosis == expect["diagnosis"], report(result)
    assert names_component(result, expect["component"]), report(result)


# ----------------------------------------------------------------------------------
# Correct variants: pass everything that applies
# ----------------------------------------------------------------------------------

COMPONENT_SETUPS = {
    "Add": ["x_times_x_plus_1", "mlp2", "shared_subexpr"], "Mul": ["x_times_x_plus_1", "shared_subexpr", "random_mul"],
    "Square": ["shared_subexpr"], "Exp": ["random_exp"], "Log": ["random_log"], "Sigmoid": ["shared_subexpr"],
    "Tanh": ["mlp2_tanh"], "ReLU": ["relu_affine", "mlp2"], "VDot": ["mlp2"], "Sum": ["shared_subexpr"],
    "Mean": ["random_mean"], "SoftmaxCrossEntropy": ["mlp2"], "MSE": [],
}
CORRECT_COMPONENTS = [(v, c) for v in CORRECT for c in components_of(v)]
CORRECT_LOOPS = [(v, s) for v in CORRECT
                 for s in (list(SETUPS) if "Backward" in defined_names(v)
                           else sorted({s for c in components_of(v) for s in COMPONENT_SETUPS[c]}))]


@pytest.mark.parametrize("variant,component", CORRECT_COMPONENTS, ids=lambda x: getattr(x, "name", x))
def test_correct_component_check(variant, component):
    ns, _ = load_variant(variant.path)
    for seed in SEEDS:
        result = public.check_component(ns, component, shapes=SHAPES[component], seed=seed)
        assert result.passed, f"seed {seed}: {report(result)}"


@pytest.mark.parametrize("variant,setup", CORRECT_LOOPS, ids=lambda x: getattr(x, "name", x))
def test_correct_loop_check(variant, setup):
    ns, _ = load_variant(variant.path)
    for seed in SEEDS:
        result = run_loop(ns, setup, seed)
        assert result.passed, f"seed {seed}: {report(result)}"


@pytest.mark.skipif(hidden is None, reason="grader/checks/hidden.py not written yet")
@pytest.mark.parametrize("variant,component", CORRECT_COMPONENTS, ids=lambda x: getattr(x, "name", x))
def test_correct_hidden_component(variant, component):
    ns, _ = load_variant(variant.path)
    test = {"id": component.lower(), "points": 1, "check": "component", "target": component,
            "hidden": {"seeds": list(HIDDEN_SEEDS), "shapes": [[list(s) for s in case] for case in SHAPES[component]]}}
    result = hidden.run_hidden(ns, test)
    assert result.passed, report(result)


@pytest.mark.skipif(hidden is None, reason="grader/checks/hidden.py not written yet")
@pytest.mark.parametrize("variant,setup", CORRECT_LOOPS, ids=lambda x: getattr(x, "name", x))
def test_correct_hidden_loop(variant, setup):
    ns, _ = load_variant(variant.path)
    result = hidden.run_hidden(ns, hidden_loop_test(setup, HIDDEN_SEEDS))
    assert result.passed, report(result)
