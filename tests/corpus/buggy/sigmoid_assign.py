"""Sigmoid: ``self.x.grad = ...`` instead of ``+=``.

"x_bar = v_bar * s * (1 - s)" written as an assignment: fine in a chain, wrong as
soon as x feeds two components.
"""
EXPECT = {"diagnosis": "assign_not_accumulate", "component": "Sigmoid", "graphs": ["shared_subexpr"]}

import numpy as np

from reference.core import CompNode


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        x = self.x.value
        e = np.exp(-np.abs(x))
        self.value = np.where(x >= 0, 1 / (1 + e), e / (1 + e))

    def backward(self):
        self.x.grad = self.grad * self.value * (1 - self.value)
