"""Sigmoid as the plain 1 / (1 + exp(-x)).

For x below about -710, exp(-x) overflows to inf (NumPy warns) and 1 / (1 + inf)
is exactly 0.0, which is the correctly rounded sigmoid there; the backward
s * (1 - s) is then 0.0, also right. Values and gradients are finite and correct.
"""
import numpy as np

from reference.core import CompNode


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        with np.errstate(over="ignore"):
            self.value = 1 / (1 + np.exp(-self.x.value))

    def backward(self):
        self.x.grad += self.grad * self.value * (1 - self.value)
