"""Backpropagation by hand, in bar notation (v_bar = d L_reg / d v).

Regularized logistic least squares for one example:
    z = w*x + b,  y = sigmoid(z),  L = 0.5*(y - t)**2,  R = 0.5*w**2,  L_reg = L + lam*R
"""
from __future__ import annotations

from .forward_mode import sigmoid


def logistic_ls_grads(w, b, x, t, lam):
    """Return (L_reg, w_bar, b_bar), computed forward then backward by hand."""
    z = w * x + b
    y = sigmoid(z)
    L = 0.5 * (y - t) ** 2
    R = 0.5 * w ** 2
    L_reg = L + lam * R

    L_reg_bar = 1.0
    R_bar = L_reg_bar * lam
    L_bar = L_reg_bar
    y_bar = L_bar * (y - t)
    z_bar = y_bar * y * (1 - y)
    w_bar = z_bar * x + R_bar * w
    b_bar = z_bar
    return L_reg, w_bar, b_bar
