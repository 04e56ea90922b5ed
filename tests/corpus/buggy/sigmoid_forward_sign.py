"""Sigmoid: 1 / (1 + exp(x)), the minus sign lost.

This is sigma(-x): the forward value is wrong everywhere except at 0.
"""
EXPECT = {"diagnosis": "forward_wrong", "component": "Sigmoid", "graphs": ["shared_subexpr"]}

import numpy as np

from reference.core import CompNode


class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = 1 / (1 + np.exp(self.x.value))

    def backward(self):
        self.x.grad += self.grad * self.value * (1 - self.value)
