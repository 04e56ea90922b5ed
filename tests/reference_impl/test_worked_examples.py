"""The worked examples of the course notes, with their exact numbers."""
import math

import numpy as np

import reference as R
from .numeric import assert_close


def test_relu_of_affine_at_w2_x3_b1():
    """H = max(0, W*x + b) at W=2, x=3, b=1: H = 7; dH/dW = 3, dH/dx = 2, dH/db = 1."""
    R.clear_compgraph()
    W, x, b = R.Parameter(2.0), R.Input(3.0), R.Parameter(1.0)
    H = R.ReLU(R.Add(R.Mul(W, x), b))
    R.Forward()
    R.Backward(H)
    assert H.value == 7.0
    assert (W.grad, x.grad, b.grad) == (3.0, 2.0, 1.0)


def test_x_times_x_plus_1_at_17_step_by_step():
    """u = x + 1, y = x * u at x = 17: y = 306; after y: u.grad 17, x.grad 18; after u: x.grad 35."""
    R.clear_compgraph()
    x, one = R.Input(17.0), R.Input(1.0)
    u = R.Add(x, one)
    y = R.Mul(x, u)
    R.Forward()
    assert y.value == 306.0
    for node in R.components + R.inputs:
        node.grad = np.zeros_like(node.value)
    y.grad = np.ones_like(y.value)
    y.backward()
    assert (u.grad, x.grad) == (17.0, 18.0)
    u.backward()
    assert x.grad == 35.0
    R.Backward(y)  # the library loop gives the same final answer
    assert x.grad == 35.0


def test_x_times_x_plus_1_in_forward_and_reverse_mode():
    f = lambda x: x * (x + 1)
    assert R.derivative(f, 17.0) == 35.0
    x = R.Var(17.0)
    y = f(x)
    y.backward()
    assert (y.value, x.grad) == (306.0, 35.0)


def test_derivative_of_x_squared_plus_one_at_3():
    assert R.derivative(lambda x: x * x + 1.0, 3.0) == 6.0


def test_logistic_least_squares_by_hand_matches_numeric():
    rng = np.random.default_rng(0)
    for _ in range(50):
        w, b, x, lam = rng.normal(size=4)
        t = rng.uniform()

        def L_reg(w, b):
            y = 1 / (1 + math.exp(-(w * x + b)))
            return 0.5 * (y - t) ** 2 + lam * 0.5 * w ** 2

        value, w_bar, b_bar = R.logistic_ls_grads(w, b, x, t, lam)
        eps = 1e-6
        assert_close(value, L_reg(w, b))
        assert_close(w_bar, (L_reg(w + eps, b) - L_reg(w - eps, b)) / (2 * eps))
        assert_close(b_bar, (L_reg(w, b + eps) - L_reg(w, b - eps)) / (2 * eps))


def test_logistic_least_squares_agrees_with_both_ad_modes():
    w, b, x, t, lam = 0.7, -0.3, 1.5, 1.0, 0.1

    def L_reg(w, b):
        y = R.sigmoid(w * x + b)
        return 0.5 * (y - t) ** 2 + lam * 0.5 * w ** 2

    _, w_bar, b_bar = R.logistic_ls_grads(w, b, x, t, lam)
    assert_close([w_bar, b_bar], R.gradient_fwd(L_reg, [w, b]))
    assert_close([w_bar, b_bar], R.gradient_rev(L_reg, [w, b]))
