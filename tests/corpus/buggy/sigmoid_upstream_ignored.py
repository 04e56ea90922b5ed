"""Sigmoid: "sigma' = sigma (1 - sigma)", and that is what goes into x.grad.

The chain rule's v_bar is missing; with an all-ones upstream gradient nobody notices.
"""
EXPECT = {"diagnosis": "upstream_ignored", "component": "Sigmoid", "graphs": ["shared_subexpr"]}

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
        self.x.grad += self.value * (1 - self.value)
