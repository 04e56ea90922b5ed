"""Reverse-mode AD on a tape of scalar ``Var`` nodes.

Each operation records its operands with the local derivative of its result with
respect to each one. ``backward`` orders the recorded graph topologically and
applies the chain rule in reverse: parent.grad += child.grad * d child / d parent,
accumulating over every path through shared subexpressions.
"""
from __future__ import annotations

import math

import numpy as np

from .forward_mode import _sigmoid


class Var:
    """A scalar recorded on the tape: ``value``, ``grad`` and its parents."""

    def __init__(self, value, parents=()):
        self.value = float(value)
        self.grad = 0.0
        self.parents = tuple(parents)  # pairs (operand Var, d self / d operand)

    def __repr__(self):
        return f"Var({self.value!r}, grad={self.grad!r})"

    @staticmethod
    def lift(x) -> "Var":
        return x if isinstance(x, Var) else Var(x)

    def __add__(self, other):
        o = Var.lift(other)
        return Var(self.value + o.value, [(self, 1.0), (o, 1.0)])

    __radd__ = __add__

    def __sub__(self, other):
        o = Var.lift(other)
        return Var(self.value - o.value, [(self, 1.0), (o, -1.0)])

    def __rsub__(self, other):
        return Var.lift(other) - self

    def __mul__(self, other):
        o = Var.lift(other)
        return Var(self.value * o.value, [(self, o.value), (o, self.value)])

    __rmul__ = __mul__

    def __truediv__(self, other):
        o = Var.lift(other)
        return Var(self.value / o.value, [(self, 1 / o.value), (o, -self.value / o.value ** 2)])

    def __rtruediv__(self, other):
        return Var.lift(other) / self

    def __pow__(self, n):
        return Var(self.value ** n, [(self, n * self.value ** (n - 1))])

    def __neg__(self):
        return Var(-self.value, [(self, -1.0)])

    def exp(self):
        e = math.exp(self.value)
        return Var(e, [(self, e)])

    def log(self):
        return Var(math.log(self.value), [(self, 1 / self.value)])

    def sin(self):
        return Var(math.sin(self.value), [(self, math.cos(self.value))])

    def cos(self):
        return Var(math.cos(self.value), [(self, -math.sin(self.value))])

    def sigmoid(self):
        s = _sigmoid(self.value)
        return Var(s, [(self, s * (1 - s))])

    def tanh(self):
        t = math.tanh(self.value)
        return Var(t, [(self, 1 - t * t)])

    def topological_order(self) -> list:
        """Every node this one depends on, each before the nodes that use it."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:  # iterative DFS: deep tapes do not hit the recursion limit
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p, _ in node.parents if id(p) not in seen)
        return order

    def backward(self) -> None:
        """Zero every grad in the graph, seed this one with 1, apply the chain rule in reverse."""
        order = self.topological_order()
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in node.parents:
                parent.grad += node.grad * local


def gradient_rev(f, xs) -> np.ndarray:
    """The gradient of f(*xs) with one forward pass and one backward pass."""
    vs = [Var(x) for x in xs]
    out = f(*vs)
    if isinstance(out, Var):
        out.backward()
    return np.array([v.grad for v in vs])
