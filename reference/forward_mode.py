"""Forward-mode AD with dual numbers.

A ``Dual`` carries a value and its derivative with respect to one chosen input:
every operation computes both, so one pass of f over ``Dual(x, 1.0)`` yields f'(x).
The elementary functions below accept a ``Dual``, a ``Var`` (the tape, see
``reference.tape``) or a plain number: they dispatch on the argument's method.
"""
from __future__ import annotations

import math

import numpy as np


def _sigmoid(x: float) -> float:
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class Dual:
    """A dual number val + dot*eps with eps^2 = 0."""

    def __init__(self, val, dot=0.0):
        self.val = float(val)
        self.dot = float(dot)

    def __repr__(self):
        return f"Dual({self.val!r}, {self.dot!r})"

    @staticmethod
    def lift(x) -> "Dual":
        """A plain number as a constant: derivative 0."""
        return x if isinstance(x, Dual) else Dual(x, 0.0)

    def __add__(self, other):
        o = Dual.lift(other)
        return Dual(self.val + o.val, self.dot + o.dot)

    __radd__ = __add__

    def __sub__(self, other):
        o = Dual.lift(other)
        return Dual(self.val - o.val, self.dot - o.dot)

    def __rsub__(self, other):
        return Dual.lift(other) - self

    def __mul__(self, other):
        o = Dual.lift(other)
        return Dual(self.val * o.val, self.dot * o.val + self.val * o.dot)

    __rmul__ = __mul__

    def __truediv__(self, other):
        o = Dual.lift(other)
        return Dual(self.val / o.val, (self.dot * o.val - self.val * o.dot) / o.val ** 2)

    def __rtruediv__(self, other):
        return Dual.lift(other) / self

    def __pow__(self, n):
        """x ** n for a plain number n: (x^n)' = n x^(n-1) x'."""
        return Dual(self.val ** n, n * self.val ** (n - 1) * self.dot)

    def __neg__(self):
        return Dual(-self.val, -self.dot)

    def exp(self):
        e = math.exp(self.val)
        return Dual(e, e * self.dot)

    def log(self):
        return Dual(math.log(self.val), self.dot / self.val)

    def sin(self):
        return Dual(math.sin(self.val), math.cos(self.val) * self.dot)

    def cos(self):
        return Dual(math.cos(self.val), -math.sin(self.val) * self.dot)

    def sigmoid(self):
        s = _sigmoid(self.val)
        return Dual(s, s * (1 - s) * self.dot)

    def tanh(self):
        t = math.tanh(self.val)
        return Dual(t, (1 - t * t) * self.dot)


def exp(x):
    return x.exp() if hasattr(x, "exp") else math.exp(x)


def log(x):
    return x.log() if hasattr(x, "log") else math.log(x)


def sin(x):
    return x.sin() if hasattr(x, "sin") else math.sin(x)


def cos(x):
    return x.cos() if hasattr(x, "cos") else math.cos(x)


def sigmoid(x):
    return x.sigmoid() if hasattr(x, "sigmoid") else _sigmoid(x)


def tanh(x):
    return x.tanh() if hasattr(x, "tanh") else math.tanh(x)


def derivative(f, x) -> float:
    """f'(x) from one forward pass over Dual(x, 1)."""
    out = f(Dual(x, 1.0))
    return out.dot if isinstance(out, Dual) else 0.0


def gradient_fwd(f, xs) -> np.ndarray:
    """The gradient of f(*xs) with len(xs) forward passes, one per input direction."""
    grad = np.zeros(len(xs))
    for i in range(len(xs)):
        out = f(*(Dual(x, 1.0 if j == i else 0.0) for j, x in enumerate(xs)))
        grad[i] = out.dot if isinstance(out, Dual) else 0.0
    return grad
