"""Central differences for the reference's own tests (float64, eps 1e-6).

With eps = 1e-6 the truncation error is O(eps^2 f''') ~ 1e-12 and the rounding
error O(1e-16 / eps) ~ 1e-10, so 1e-6 relative agreement has a wide margin.
"""
import numpy as np

EPS = 1e-6


def numeric_grad(f, x: np.ndarray) -> np.ndarray:
    """d f / d x for a scalar function f() of the array x, perturbing x in place."""
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + EPS
        up = f()
        x[idx] = old - EPS
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * EPS)
    return grad


def assert_close(got, expected, what=""):
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8, err_msg=what)
