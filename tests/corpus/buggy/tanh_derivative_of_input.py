"""Tanh: "tanh' = 1 - tanh^2", but squaring the input instead of the output.

x_bar = v_bar * (1 - x**2): right only at x = 0.
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
        self.x.grad += self.grad * (1 - self.x.value ** 2)
