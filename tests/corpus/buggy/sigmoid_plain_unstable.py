"""Sigmoid as the plain 1 / (1 + np.exp(-x)), which the notebook asks to avoid.

The values stay finite (1 / (1 + inf) is 0.0), but np.exp(-x) overflows for x = -1000: the
large-input case raises NumPy's overflow and fails; the ordinary cases pass.
"""
EXPECT = {"diagnosis": "non_finite", "component": "Sigmoid", "graphs": []}

import numpy as np

from reference.core import CompNode


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = 1 / (1 + np.exp(-self.x.value))

    def backward(self):
        self.x.grad += self.grad * self.value * (1 - self.value)
