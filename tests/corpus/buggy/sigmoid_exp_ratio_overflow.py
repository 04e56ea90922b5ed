"""Sigmoid: sigma(x) = e^x / (1 + e^x), "the same formula, multiplied through".

For x around 710 and above ``np.exp(x)`` is inf and inf / inf is NaN.
"""
EXPECT = {"diagnosis": "non_finite", "component": "Sigmoid", "graphs": []}

import numpy as np

from reference.core import CompNode


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        e = np.exp(self.x.value)
        self.value = e / (1 + e)

    def backward(self):
        self.x.grad += self.grad * self.value * (1 - self.value)
