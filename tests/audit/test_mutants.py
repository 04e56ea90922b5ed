"""The mutant generator: every operator kind, on small sample code, each mutant a real change."""
from __future__ import annotations

import ast

import numpy as np
import pytest

from grader.audit.mutants import OPERATORS, source_mutants

SAMPLE = '''
class Op(CompNode):
    def __init__(self, x, W):
        super().__init__()
        self.x, self.W = x, W

    def forward(self):
        h = np.maximum(self.x.value, 0.5) @ self.W.value
        self.value = h.sum(axis=0, keepdims=True) - 2 * h.mean()

    def backward(self):
        g = self.grad * (self.x.value > 0)
        self.x.grad += g @ self.W.value.T
        self.W.grad = self.x.value.T @ self.grad


class Pair:
    def __init__(self, val, dot=0.0):
        self.val = float(val)
        self.dot = float(dot)

    def __mul__(self, other):
        o = other
        return Pair(self.val * o.val, self.dot * o.val + self.val * o.dot)


def loop(nodes, x):
    total = 0.0
    for n in nodes[::-1]:
        if n >= x:
            total += 0.5 * n
    return total
'''

UNITS = ["Op.forward", "Op.backward", "Pair.__mul__", "loop"]


@pytest.fixture(scope="module")
def all_mutants():
    return {u: source_mutants(SAMPLE, u) for u in UNITS}


def test_every_operator_kind_occurs(all_mutants):
    seen = {m.operator for ms in all_mutants.values() for m in ms}
    assert seen == set(OPERATORS)


def test_each_mutant_is_valid_python_and_a_real_change(all_mutants):
    original = {u: ast.unparse(next(n for n in ast.parse(SAMPLE).body if n.name == u.split(".")[0]))
                for u in UNITS}
    for u, ms in all_mutants.items():
        assert ms, u
        sources = [m.source for m in ms]
        assert len(set(sources)) == len(sources), f"{u}: duplicate mutants"
        for m in ms:
            compile(m.source, m.id, "exec")
            assert m.source != original[u], m.id
            assert m.id.startswith(f"{u}:{m.operator}@{m.line}:{m.col}"), m.id
            assert m.description.startswith(OPERATORS[m.operator])


def test_ids_are_stable_and_unique(all_mutants):
    again = {u: source_mutants(SAMPLE, u) for u in UNITS}
    for u in UNITS:
        assert [m.id for m in again[u]] == [m.id for m in all_mutants[u]]
        assert len({m.id for m in all_mutants[u]}) == len(all_mutants[u])


def _by(ms, operator, needle):
    hits = [m for m in ms if m.operator == operator and needle in m.description]
    assert hits, f"no {operator} mutant with {needle!r}: " + "; ".join(m.description for m in ms)
    return hits[0]


def test_operators_do_what_they_say(all_mutants):
    fwd, bwd, mul, loop = (all_mutants[u] for u in UNITS)
    assert "self.x.grad = g @" in _by(bwd, "augassign", "-> `=`").source
    assert "self.W.grad += " in _by(bwd, "augassign", "-> `+=`").source
    assert "self.W.value.T.T" not in _by(bwd, "transpose", "`self.W.value.T` -> `self.W.value`").source
    assert "pass" in _by(bwd, "noop", "pass").source
    assert "(self.x.value >= 0)" in _by(bwd, "compare_flip", "`>` -> `>=`").source
    assert "h.sum(keepdims=True)" in _by(fwd, "axis", "without axis").source
    assert "h.sum(axis=0)" in _by(fwd, "axis", "without keepdims").source
    assert "h.mean(axis=0)" in _by(fwd, "axis", "with axis=0").source
    assert "self.x.value[...] =" in _by(fwd, "inplace", "in place").source
    assert "np.maximum(self.value, 0.5)" in _by(fwd, "io_swap", "`self.x.value` -> `self.value`").source
    assert "np.zeros_like(" in _by(bwd, "return_zeros", "zeros").source
    assert "np.ones_like(" in _by(bwd, "return_ones", "ones").source
    assert "self.x.grad += self.grad" in _by(bwd, "return_input", "-> `self.grad`").source
    assert "self.val = self.val * o.val" in _by(mul, "inplace", "returns self").source
    assert "o.val * self.val" not in _by(mul, "drop_term", "-> `self.dot * o.val`").source
    assert "for n in nodes:" in _by(loop, "loop_skip", "not reversed").source
    assert "nodes[::-1][1:]" in _by(loop, "loop_skip", "skips its first element").source
    assert "nodes[::-1][:-1]" in _by(loop, "loop_skip", "skips its last element").source
    assert "total = 0.5 * n" in _by(loop, "augassign", "-> `=`").source
    assert "1.0 * n" in _by(loop, "constant", "0.5 -> 1.0").source
    assert "2 * h.mean() - h.sum(axis=0, keepdims=True)" in _by(fwd, "swap_operands", "- 2 * h.mean()").source
    assert "h.sum(axis=0, keepdims=True) + 2 * h.mean()" in _by(fwd, "sign_flip", "-> `h.sum").source
    assert "-(self.x.value.T @ self.grad)" in _by(bwd, "sign_flip", "`self.x.value.T @ self.grad` negated").source
    assert "total" not in _by(loop, "drop_stmt", "drop `for n in").source.split("return")[0].split("0.0")[1]
    assert "2 * h.mean() * h.mean()" in _by(fwd, "dup_term", "`h.mean()` twice").source


def test_mutants_run_and_differ_from_the_original():
    """Executed, a mutant of a plain function computes something else on some input."""
    ns0: dict = {"np": np}
    exec(compile(SAMPLE.split("\n\ndef loop")[0].replace("(CompNode)", ""), "s", "exec"), ns0)
    exec(compile("def loop" + SAMPLE.split("\n\ndef loop")[1], "s", "exec"), ns0)
    xs = [([3.0, -1.0, 2.0, 5.0], 1.5), ([0.5, 4.0], 0.0), ([2.0, 2.0, -3.0], 2.0)]
    want = [ns0["loop"](list(a), b) for a, b in xs]
    same = []
    for m in source_mutants(SAMPLE, "loop"):
        ns = {"np": np}
        exec(compile(m.source, m.id, "exec"), ns)
        try:
            got = [ns["loop"](list(a), b) for a, b in xs]
        except Exception:
            continue
        if got == want:
            same.append(m.description)
    # the only equivalent mutant: a sum does not depend on the order of its terms
    assert same == ["a loop skips its first/last element, or runs in the other direction: "
                    "`nodes[::-1]` -> `nodes` (not reversed)"]
