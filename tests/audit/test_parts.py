"""The audit's parts: unit ownership, seed sets, release rendering, equivalence comparison."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from grader.audit import domains
from grader.audit.namespace import build, notebook_cells, render_solution
from grader.audit.run import derived_seed, seed_set
from grader.audit.units import DUAL_OP_METHODS, UnitError, load
from grader.authoring.assignment import ASSIGNMENTS, load_assignment


def test_every_unit_has_exactly_one_owner_that_grades_it():
    for name in ("scalar_backprop", "forward_mode", "tensor_edf", "mlp_training"):
        a, units = load(name)
        tests = {t.id: t for t in a.tests}
        assert units, name
        assert len({u.name for u in units}) == len(units)
        for u in units:
            t = tests[u.test]
            assert u.check == t.check
            if t.check == "dual" and u.method in DUAL_OP_METHODS.values():
                assert any(DUAL_OP_METHODS[op] == u.method or (op, u.method) == ("radd", "__add__")
                           or (op, u.method) == ("rmul", "__mul__") for op in t.hidden["ops"]), u
            elif t.check in ("component", "backward_loop", "function") and u.method in (None, "forward", "backward"):
                assert t.target in (u.top, "Sigmoid"), u  # tensor_edf's sigmoid helper sits in Sigmoid's cell


def test_a_unit_claimed_by_two_tests_is_an_error(tmp_path):
    root = tmp_path / "assignments"
    shutil.copytree(ASSIGNMENTS / "tensor_edf", root / "tensor_edf")
    template = root / "tensor_edf" / "tensor_edf.py"
    template.write_text(template.read_text() + "\n# %% [test] id=relu_again\n")
    suite = root / "tensor_edf" / "suite.toml"
    suite.write_text(suite.read_text() + '\n[[test]]\nid = "relu_again"\npoints = 1\ncheck = "component"\n'
                     'target = "ReLU"\n[test.visible]\nseed = 0\n[test.hidden]\nseeds = [1]\n')
    with pytest.raises(UnitError, match="relu"):
        load("tensor_edf", root)


def test_seed_sets_are_derived_deterministically_and_differ():
    t = {"assignment": "a", "id": "relu", "hidden": {"seeds": [1237, 5591]}}
    assert seed_set(t, 0) == t
    s1, s2 = seed_set(t, 1)["hidden"]["seeds"], seed_set(t, 2)["hidden"]["seeds"]
    assert s1 == seed_set(t, 1)["hidden"]["seeds"]
    assert len({*s1, *s2, 1237, 5591}) == 6
    assert t["hidden"]["seeds"] == [1237, 5591]  # the suite's table is not changed
    assert seed_set({"assignment": "a", "id": "f", "hidden": {}}, 1)["hidden"]["seed"] == derived_seed("a", "f", 1, 0)


def test_release_forms_of_a_solution_cell():
    src = ("class A:\n    def forward(self):\n        ### BEGIN SOLUTION\n        self.value = 1\n"
           "        ### END SOLUTION\n\n    def backward(self):\n        ### BEGIN SOLUTION\n"
           "        self.x.grad += self.grad\n        ### END SOLUTION\n")
    stub = render_solution(src, lambda q: "stub")
    assert stub.count("raise NotImplementedError()") == 2 and "self.value = 1" not in stub
    fwd = render_solution(src, lambda q: "keep" if q == "A.forward" else "pass")
    assert "self.value = 1" in fwd and "self.x.grad" not in fwd and "        pass" in fwd
    compile(fwd, "x", "exec")


def test_lazy_namespaces_build_and_the_release_raises_not_implemented():
    a = load_assignment("tensor_edf")
    ns, errors = build(notebook_cells(a, lambda q: "stub"))
    assert errors == []
    with pytest.raises(NotImplementedError):
        ns["unbroadcast"](np.ones(3), (3,))
    ref, errors = build(notebook_cells(a))
    assert errors == [] and ref["unbroadcast"](np.ones((2, 3)), (3,)).tolist() == [2.0, 2.0, 2.0]


def test_same_compares_to_1e12_relative():
    assert domains.same(("ok", [np.ones(3), 2.0]), ("ok", [np.ones(3) * (1 + 1e-14), 2.0]))[0]
    assert not domains.same(("ok", [np.ones(3)]), ("ok", [np.ones(3) * (1 + 1e-9)]))[0]
    assert not domains.same(("ok", np.ones(3)), ("ok", np.ones((3, 1))))[0]
    assert not domains.same(("ok", 1.0), ("raises", "ValueError"))[0]
    assert domains.same(("raises", "ValueError"), ("raises", "ValueError"))[0]
    assert not domains.same(("ok", None), ("ok", np.zeros(2)))[0]
