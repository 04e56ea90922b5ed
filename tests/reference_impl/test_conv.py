"""The reference Conv2D, MaxPool2D and Flatten against loops and central differences.

Every backward is checked with a random upstream gradient and a non-zero grad already present
(so ``+=`` is exercised), over strides 1 and 2, paddings 0 and 1, odd and even sizes.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from reference.conv import Conv2D, Flatten, MaxPool2D, output_size
from reference.core import clear_compgraph

H = 1e-6


class Leaf:
    def __init__(self, value):
        self.value = np.asarray(value, dtype=float)
        self.grad = np.zeros_like(self.value)


def loop_conv(x, W, b, stride, padding):
    """Cross-correlation written as loops over every output pixel (the definition)."""
    N, C, Hh, Ww = x.shape
    F, _, KH, KW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH, OW = output_size(Hh, KH, stride, padding), output_size(Ww, KW, stride, padding)
    out = np.empty((N, F, OH, OW))
    for n, f, i, j in itertools.product(range(N), range(F), range(OH), range(OW)):
        patch = xp[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
        out[n, f, i, j] = np.sum(patch * W[f]) + b[f]
    return out


def loop_pool(x, size, stride):
    N, C, Hh, Ww = x.shape
    OH, OW = output_size(Hh, size, stride), output_size(Ww, size, stride)
    out = np.empty((N, C, OH, OW))
    for n, c, i, j in itertools.product(range(N), range(C), range(OH), range(OW)):
        out[n, c, i, j] = x[n, c, i * stride:i * stride + size, j * stride:j * stride + size].max()
    return out


def distinct(rng, shape):
    """Entries pairwise at least 0.01 apart: no ties in any pooling window, even after a step H."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.01 + rng.uniform(0, 0.001, n)).reshape(shape)


def check_backward(make, operands, rng):
    """Grads of ``make(*leaves)`` with a random upstream and prior grads vs central differences."""
    clear_compgraph()
    leaves = [Leaf(o) for o in operands]
    c = make(*leaves)
    c.forward()
    upstream = rng.normal(size=c.value.shape)
    prior = [rng.normal(size=o.shape) for o in operands]
    for leaf, p in zip(leaves, prior):
        leaf.grad = p.copy()
    c.grad = upstream.copy()
    c.backward()
    for k, (leaf, p) in enumerate(zip(leaves, prior)):
        want = np.zeros(leaf.value.shape)
        for j in np.ndindex(leaf.value.shape):
            vals = [lf.value.copy() for lf in leaves]

            def loss(delta):
                shifted = [Leaf(v.copy()) for v in vals]
                shifted[k].value[j] += delta
                d = make(*shifted)
                d.forward()
                return float(np.sum(upstream * d.value))
            want[j] = (loss(H) - loss(-H)) / (2 * H)
        np.testing.assert_allclose(leaf.grad - p, want, rtol=1e-5, atol=1e-6, err_msg=f"operand {k}")
        assert leaf.grad.shape == leaf.value.shape
    clear_compgraph()


CONV_CASES = [  # (N, C, H, W), (F, KH, KW), stride, padding
    ((2, 3, 5, 5), (4, 3, 3), 1, 0),
    ((2, 3, 5, 5), (4, 3, 3), 1, 1),
    ((1, 2, 6, 6), (3, 3, 3), 2, 0),
    ((2, 2, 7, 6), (3, 3, 2), 2, 1),
    ((1, 1, 4, 4), (2, 2, 2), 2, 0),
    ((2, 2, 6, 7), (2, 1, 3), 1, 1),
]


@pytest.mark.parametrize("xs,ws,stride,padding", CONV_CASES)
def test_conv2d_forward_is_cross_correlation(xs, ws, stride, padding):
    rng = np.random.default_rng(0)
    x, W, b = rng.normal(size=xs), rng.normal(size=(ws[0], xs[1], *ws[1:])), rng.normal(size=ws[0])
    c = Conv2D(Leaf(x), Leaf(W), Leaf(b), stride=stride, padding=padding)
    c.forward()
    np.testing.assert_allclose(c.value, loop_conv(x, W, b, stride, padding), rtol=1e-12, atol=1e-12)
    clear_compgraph()


@pytest.mark.parametrize("xs,ws,stride,padding", CONV_CASES)
@pytest.mark.parametrize("seed", [1, 2])
def test_conv2d_backward_central_differences(xs, ws, stride, padding, seed):
    rng = np.random.default_rng(seed)
    ops = [rng.normal(size=xs), rng.normal(size=(ws[0], xs[1], *ws[1:])), rng.normal(size=ws[0])]
    check_backward(lambda x, W, b: Conv2D(x, W, b, stride=stride, padding=padding), ops, rng)


def test_conv2d_bias_grad_sums_batch_and_space():
    rng = np.random.default_rng(3)
    x, W, b = Leaf(rng.normal(size=(3, 2, 5, 5))), Leaf(rng.normal(size=(4, 2, 3, 3))), Leaf(np.zeros(4))
    c = Conv2D(x, W, b, padding=1)
    c.forward()
    c.grad = rng.normal(size=c.value.shape)
    c.backward()
    np.testing.assert_allclose(b.grad, c.grad.sum(axis=(0, 2, 3)))
    clear_compgraph()


POOL_CASES = [((2, 3, 4, 4), 2, 2), ((1, 2, 5, 5), 2, 2), ((2, 2, 5, 6), 3, 2), ((1, 2, 5, 5), 2, 1),
              ((2, 1, 7, 7), 3, 3)]


@pytest.mark.parametrize("xs,size,stride", POOL_CASES)
def test_maxpool_forward(xs, size, stride):
    x = distinct(np.random.default_rng(0), xs)
    p = MaxPool2D(Leaf(x), size=size, stride=stride)
    p.forward()
    np.testing.assert_array_equal(p.value, loop_pool(x, size, stride))
    clear_compgraph()


@pytest.mark.parametrize("xs,size,stride", POOL_CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_maxpool_backward_central_differences(xs, size, stride, seed):
    rng = np.random.default_rng(seed)
    check_backward(lambda x: MaxPool2D(x, size=size, stride=stride), [distinct(rng, xs)], rng)


def test_maxpool_routes_only_to_the_argmax():
    x = np.array([[[[1.0, 5.0], [2.0, 3.0]]]])
    leaf = Leaf(x)
    p = MaxPool2D(leaf)
    p.forward()
    p.grad = np.array([[[[2.5]]]])
    p.backward()
    np.testing.assert_array_equal(leaf.grad, [[[[0.0, 2.5], [0.0, 0.0]]]])
    clear_compgraph()


@pytest.mark.parametrize("xs", [(2, 3, 4, 5), (3, 7), (1, 2, 2)])
def test_flatten(xs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=xs)
    f = Flatten(Leaf(x))
    f.forward()
    np.testing.assert_array_equal(f.value, x.reshape(xs[0], -1))
    check_backward(Flatten, [x], rng)


def test_reference_cnn_reaches_097_on_the_digits():
    """The figure the conv_edf notebook promises: >= 0.97 test accuracy with the defaults."""
    from reference.cnn import as_images, train_cnn
    from reference.mlp import load_digits_split

    X_tr, y_tr, X_te, y_te = load_digits_split(0)
    model, history = train_cnn(as_images(X_tr), y_tr)
    assert history[-1]["loss"] < history[0]["loss"] / 10
    assert model.accuracy(as_images(X_te), y_te) >= 0.97
