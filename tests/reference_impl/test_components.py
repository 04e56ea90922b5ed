"""Every reference component against central differences, with random upstream grads.

Each case builds the component on leaves of the given shapes, applies a random
upstream gradient v (never ones) and checks every operand's grad against the
numeric gradient of sum(v * forward(operands)), including batch dimensions and
broadcasting. Inputs are drawn away from kinks (ReLU at 0) and singularities (Log at 0).
"""
import numpy as np
import pytest

import reference as R
from .numeric import assert_close, numeric_grad


def away_from_zero(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


DOMAINS = {"Log": lambda rng, s: rng.uniform(0.2, 3.0, size=s), "ReLU": away_from_zero}

CASES = [
    ("Add", [(4, 3), (4, 3)]), ("Add", [(5, 3), (3,)]), ("Add", [(2, 3, 4), (1, 4)]), ("Add", [(), ()]),
    ("Mul", [(4, 3), (4, 3)]), ("Mul", [(5, 3), (3,)]), ("Mul", [(3, 1), (1, 4)]), ("Mul", [(), (3,)]),
    ("Square", [(4, 3)]), ("Square", [()]),
    ("Exp", [(4, 3)]), ("Log", [(4, 3)]), ("Log", [(6,)]),
    ("Sigmoid", [(4, 3)]), ("Sigmoid", [()]), ("Tanh", [(2, 3, 2)]), ("ReLU", [(5, 4)]), ("ReLU", [()]),
    ("VDot", [(5, 3), (3, 4)]), ("VDot", [(3,), (3, 4)]), ("VDot", [(2, 5, 3), (3, 2)]),
    ("Sum", [(4, 3)]), ("Sum", [(7,)]), ("Mean", [(4, 3)]), ("Mean", [(2, 3, 2)]),
    ("MSE", [(4, 3), (4, 3)]), ("MSE", [(6,), (6,)]),
]


def leaves(rng, cls_name, shapes):
    draw = DOMAINS.get(cls_name, lambda rng, s: rng.normal(size=s))
    return [R.Parameter(draw(rng, s)) for s in shapes]


def check_case(comp, operands, rng):
    comp.forward()
    v = rng.normal(size=np.shape(comp.value))
    for op in operands:
        op.grad = rng.normal(size=op.value.shape)  # pre-existing grads: backward must add to them
    before = [op.grad.copy() for op in operands]
    comp.grad = v
    comp.backward()

    def f():
        comp.forward()
        return float(np.sum(v * comp.value))

    for i, op in enumerate(operands):
        assert op.grad.shape == op.value.shape
        assert_close(op.grad - before[i], numeric_grad(f, op.value), f"operand {i}")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("cls_name,shapes", CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_component_matches_central_differences(cls_name, shapes, seed):
    R.clear_compgraph()
    rng = np.random.default_rng(seed)
    operands = leaves(rng, cls_name, shapes)
    check_case(getattr(R, cls_name)(*operands), operands, rng)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n,c", [(4, 3), (1, 5), (8, 10)])
def test_softmax_cross_entropy_matches_central_differences(n, c, seed):
    R.clear_compgraph()
    rng = np.random.default_rng(seed)
    logits = R.Parameter(rng.normal(scale=3.0, size=(n, c)))
    labels = R.Input(rng.integers(0, c, size=n))
    check_case(R.SoftmaxCrossEntropy(logits, labels), [logits], rng)


def test_softmax_cross_entropy_value_against_formula():
    R.clear_compgraph()
    z = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    y = np.array([2, 0])
    loss = R.SoftmaxCrossEntropy(R.Parameter(z), R.Input(y))
    loss.forward()
    log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert loss.value.shape == ()
    assert_close(loss.value, -log_softmax[[0, 1], y].mean())


@pytest.mark.parametrize("scale", [1000.0, -1000.0])
def test_stable_for_extreme_inputs(scale):
    R.clear_compgraph()
    z = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 1.0]]) * scale
    logits = R.Parameter(z)
    sce = R.SoftmaxCrossEntropy(logits, R.Input(np.array([0, 1])))
    sig = R.Sigmoid(R.Parameter(z))
    log = R.Log(R.Parameter(np.abs(z) + 1.0))
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        R.Forward()
        R.Backward(sce)
        sig.grad = np.ones_like(sig.value)
        sig.backward()
    for node in (sce, sig, log, logits):
        assert np.all(np.isfinite(node.value)) and np.all(np.isfinite(node.grad))
    assert np.all((sig.value >= 0) & (sig.value <= 1))


def test_grad_of_broadcast_bias_sums_over_the_batch():
    R.clear_compgraph()
    rng = np.random.default_rng(0)
    h, b = R.Parameter(rng.normal(size=(5, 3))), R.Parameter(rng.normal(size=3))
    out = R.Add(h, b)
    out.forward()
    for node in (h, b):
        node.grad = np.zeros_like(node.value)
    out.grad = rng.normal(size=(5, 3))
    out.backward()
    assert b.grad.shape == (3,)
    assert_close(b.grad, out.grad.sum(axis=0))


def test_unbroadcast_sums_leading_and_unit_axes():
    g = np.arange(24.0).reshape(2, 3, 4)
    assert_close(R.unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    assert_close(R.unbroadcast(g, (3, 1)), g.sum(axis=(0, 2))[:, None])
    assert_close(R.unbroadcast(g, (2, 3, 4)), g)
    assert R.unbroadcast(g, ()).shape == ()
