"""The reference Backward keeps the loop invariant on random graphs.

After each single component's backward(), for every node v (input, parameter or
component): v.grad == d loss / d v for the program made of the processed
components only. Checked numerically: perturb v, recompute only the processed
components (other than v itself) in forward order, and watch the loss.
"""
import numpy as np
import pytest

import reference as R
from .numeric import assert_close, numeric_grad

N, D = 3, 4


def random_graph(rng, n_components):
    """A random DAG over the contract's smooth components, ending in a 0-d loss.

    Operands are drawn from every node made so far, so nodes get several
    consumers (shared subexpressions). ReLU is left out: it has a kink.
    """
    R.clear_compgraph()
    pool = [R.Parameter(rng.normal(size=(N, D))), R.Parameter(rng.normal(size=D)),
            R.Input(rng.normal(size=(N, D)))]
    W = R.Parameter(rng.normal(size=(D, D)) / 2)
    unary = [R.Sigmoid, R.Tanh, R.Square]
    while len(R.components) < n_components:
        kind = rng.integers(4)
        a, b = (pool[i] for i in rng.integers(len(pool), size=2))
        if kind == 0:
            node = unary[rng.integers(len(unary))](a)
        elif kind == 1:
            node = R.Add(a, b)
        elif kind == 2:
            node = R.Tanh(R.Mul(a, b))  # tanh keeps products bounded in deep graphs
        else:
            node = R.VDot(a, W)
        pool.append(node)
    loss = R.Add(R.Sum(R.Mul(pool[-1], pool[-2])), R.Mean(R.Square(pool[-3])))
    R.Forward()
    return loss


def processed_loss(loss, v, processed):
    """The loss as a function of v.value, through the processed components only."""
    def f():
        for c in R.components:
            if c in processed and c is not v:
                c.forward()
        return float(loss.value)
    return f


def restore(values):
    """Fresh array copies (0-d included), so perturbing one never touches the originals."""
    for node, value in values.items():
        node.value = np.array(value)


@pytest.mark.parametrize("seed", range(12))
def test_invariant_after_every_reverse_step(seed):
    rng = np.random.default_rng(seed)
    loss = random_graph(rng, n_components=int(rng.integers(4, 12)))
    nodes = R.components + R.params + R.inputs
    values = {node: np.array(node.value) for node in nodes}
    processed, steps = set(), []
    original = {c: c.backward for c in R.components}

    def instrumented(c):
        def backward():
            original[c]()
            processed.add(c)
            grads = {node: node.grad.copy() for node in nodes}
            restore(values)
            for v in nodes:
                expected = numeric_grad(processed_loss(loss, v, processed), v.value)
                restore(values)
                assert_close(grads[v], expected, f"step {len(processed)}: {type(c).__name__}")
            for c2 in R.components:  # recompute caches from the original values
                c2.forward()
            steps.append(c)
        return backward

    for c in R.components:
        c.backward = instrumented(c)
    R.Backward(loss)
    assert steps == R.components[::-1]


def test_before_any_step_loss_grad_is_one_and_others_zero():
    rng = np.random.default_rng(0)
    loss = random_graph(rng, 6)
    seen = {}
    first = R.components[-1]
    original = first.backward

    def spy():
        seen.update({id(n): n.grad.copy() for n in R.components + R.params + R.inputs})
        original()

    first.backward = spy
    R.Backward(loss)
    for node in R.components + R.params + R.inputs:
        expected = np.ones_like(node.value) if node is loss else np.zeros_like(node.value)
        np.testing.assert_array_equal(seen[id(node)], expected)


def test_backward_twice_gives_the_same_grads():
    loss = random_graph(np.random.default_rng(3), 8)
    R.Backward(loss)
    first = [p.grad.copy() for p in R.params]
    R.Backward(loss)
    for g, p in zip(first, R.params):
        np.testing.assert_array_equal(g, p.grad)


def test_sgd_steps_against_the_gradient():
    loss = random_graph(np.random.default_rng(4), 6)
    before = float(loss.value)
    R.Backward(loss)
    R.SGD(1e-3)
    R.Forward()
    assert float(loss.value) < before
