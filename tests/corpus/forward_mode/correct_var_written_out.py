"""A correct Var written differently: reflected operators through negation and powers,
a recursive topological order with a visited set, gradient_rev that tests for backward."""

import math

import numpy as np

from reference.forward_mode import _sigmoid


class Var:
    def __init__(self, value, parents=()):
        self.value = float(value)
        self.grad = 0.0
        self.parents = tuple(parents)

    @staticmethod
    def lift(x):
        return x if isinstance(x, Var) else Var(x)

    def __add__(self, other):
        o = Var.lift(other)
        return Var(self.value + o.value, [(self, 1.0), (o, 1.0)])

    def __radd__(self, other):
        return self + other

    def __neg__(self):
        return Var(-self.value, [(self, -1.0)])

    def __sub__(self, other):
        return self + (-Var.lift(other))

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        o = Var.lift(other)
        return Var(self.value * o.value, [(self, o.value), (o, self.value)])

    def __rmul__(self, other):
        return self * other

    def __pow__(self, n):
        return Var(self.value ** n, [(self, n * self.value ** (n - 1))])

    def __truediv__(self, other):
        return self * Var.lift(other) ** -1

    def __rtruediv__(self, other):
        return self ** -1 * other

    def exp(self):
        return Var(math.exp(self.value), [(self, math.exp(self.value))])

    def log(self):
        return Var(math.log(self.value), [(self, 1.0 / self.value)])

    def sin(self):
        return Var(math.sin(self.value), [(self, math.cos(self.value))])

    def cos(self):
        return Var(math.cos(self.value), [(self, -math.sin(self.value))])

    def sigmoid(self):
        s = _sigmoid(self.value)
        return Var(s, [(self, s * (1.0 - s))])

    def tanh(self):
        return Var(math.tanh(self.value), [(self, 1.0 / math.cosh(self.value) ** 2)])

    def topological_order(self):
        order, seen = [], set()

        def visit(node):
            if id(node) in seen:
                return
            seen.add(id(node))
            for parent, _ in node.parents:
                visit(parent)
            order.append(node)

        visit(self)
        return order

    def backward(self):
        order = self.topological_order()
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in order[::-1]:
            for parent, local in node.parents:
                parent.grad = parent.grad + local * node.grad


def gradient_rev(f, xs):
    vs = [Var(x) for x in xs]
    out = f(*vs)
    if hasattr(out, "backward"):
        out.backward()
    return np.array([float(v.grad) for v in vs])
