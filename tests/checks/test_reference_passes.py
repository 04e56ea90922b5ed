"""The reference passes every check kind, on many seeds, publicly and hidden."""
from __future__ import annotations

import pytest

import reference
from grader.checks import hidden, public as P

from .conftest import suites

SEEDS = range(200)


@pytest.mark.parametrize("name", list(P.OPERANDS))
def test_component_numeric_check_passes_over_200_seeds(name):
    failures = [(seed, r.message) for seed in SEEDS
                if not (r := P.check_component(reference, name, seed=seed)).passed]
    assert failures == []


@pytest.mark.parametrize("graph", ["x_times_x_plus_1", "relu_affine", "mlp2", "shared_subexpr", "random:6", "random:12"])
def test_backward_numeric_check_passes(graph):
    failures = [(seed, r.message) for seed in range(10)
                if not (r := P.check_backward(reference, graph, seed=seed)).passed]
    assert failures == []


@pytest.mark.parametrize("graph", ["x_times_x_plus_1", "relu_affine", "shared_subexpr", "random:5"])
def test_backward_on_scalar_assignment_classes(graph):
    classes = hidden.ASSIGNMENT_CLASSES["scalar_backprop"]
    for seed in range(10):
        spec = P.graph_spec(graph, seed, classes)
        assert {n["kind"] for n in P._components(spec)} <= set(classes)
        assert P.check_backward(reference, graph, seed=seed, classes=classes).passed


def test_mlp2_needs_its_classes():
    r = P.check_backward(reference, "mlp2", classes=("Add", "Mul"))
    assert not r.passed and "VDot" in r.message


def test_dual_tape_function_over_seeds():
    for seed in range(20):
        assert P.check_dual(reference, seed=seed).passed
        assert P.check_tape(reference, seed=seed).passed
        assert P.check_function(reference, "logistic_ls_grads", seed=seed).passed


def all_tests():
    # the mlp kinds need a notebook namespace: tests/grading/test_mlp_seeds.py checks them
    return [(a, t) for a, ts in suites().items() for t in ts if not t["check"].startswith("mlp_")]


@pytest.mark.parametrize("assignment,test", all_tests(), ids=lambda x: x if isinstance(x, str) else x["id"])
def test_every_suite_test_passes_public_and_hidden(assignment, test):
    for which in ("visible", "hidden"):
        pub = P.run_public(reference, test, which)
        hid = hidden.run_hidden(reference, test, which)
        assert pub.passed, pub.message
        assert hid.passed, hid.message
        assert pub.score == hid.score == 1.0


def test_hidden_component_cases_pass_over_many_seeds():
    for name in P.OPERANDS:
        for seed in range(10):
            test = {"id": name, "check": "component", "target": name, "hidden": {"seed": seed}}
            assert hidden.run_hidden(reference, test).passed


def test_checks_do_not_print(capsys):
    P.check_component(reference, "Sigmoid", seed=0)
    P.check_backward(reference, "mlp2", seed=0)
    assert capsys.readouterr() == ("", "")
