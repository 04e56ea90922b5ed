"""Mul: "d(ab)/da = b and d(ab)/db = a", without the chain rule.

The local derivative is right but ``self.grad`` is never used: correct only when
Mul is the last node (upstream gradient all ones).
"""
EXPECT = {"diagnosis": "upstream_ignored", "component": "Mul", "graphs": ["shared_subexpr", "random_mul"]}

import numpy as np

from reference.core import CompNode, unbroadcast


class Mul(CompNode):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = self.a.value * self.b.value

    def backward(self):
        ones = np.ones_like(self.value)
        self.a.grad += unbroadcast(ones * self.b.value, self.a.value.shape)
        self.b.grad += unbroadcast(ones * self.a.value, self.b.value.shape)
