"""Sigmoid computed in float32, as the original EDF (and public EDF code) does.

The formula is right and stable; the values carry only float32's ~7 digits. The grader says
so ("compute in float64") instead of calling the derivative wrong, and the loop check names
Sigmoid, not the component that consumes its value.
"""
EXPECT = {"diagnosis": "low_precision", "component": "Sigmoid", "graphs": ["shared_subexpr"]}

import numpy as np

from reference.core import CompNode


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        x = np.asarray(self.x.value, dtype=np.float32)
        e = np.exp(-np.abs(x))
        self.value = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)

    def backward(self):
        self.x.grad += self.grad * self.value * (1 - self.value)
