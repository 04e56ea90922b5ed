"""Tanh: the derivative written as 1 - tanh(x) instead of 1 - tanh(x)**2.

Off by tanh(x) * (1 - tanh(x)): wrong for every input the cases draw (|x| >= 0.25).
"""
EXPECT = {"diagnosis": "wrong_gradient", "component": "Tanh", "graphs": ["mlp2_tanh"]}

import numpy as np

from reference.core import CompNode


class Tanh(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.tanh(self.x.value)

    def backward(self):
        self.x.grad += self.grad * (1 - self.value)
