"""Square: "the derivative of x^2 is 2", dropping the x.

x_bar = 2 * v_bar instead of 2 * x * v_bar.
"""
EXPECT = {"diagnosis": "wrong_gradient", "component": "Square", "graphs": ["shared_subexpr"]}

import numpy as np

from reference.core import CompNode


class Square(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = self.x.value ** 2

    def backward(self):
        self.x.grad += 2 * self.grad
