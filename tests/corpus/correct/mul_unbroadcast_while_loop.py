"""Mul with a tinygrad-style ``while`` loop that sums leading and size-1 axes away."""
import numpy as np

from reference.core import CompNode


def unbroadcast_to(g, shape):
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


class Mul(CompNode):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = np.multiply(self.a.value, self.b.value)

    def backward(self):
        a, b = self.a.value, self.b.value
        self.a.grad += unbroadcast_to(self.grad * b, np.shape(a))
        self.b.grad += unbroadcast_to(self.grad * a, np.shape(b))
