"""Square: the power rule without the exponent in front: x_bar = v_bar * x.

Off by a factor of 2 everywhere.
"""
EXPECT = {"diagnosis": "wrong_factor", "component": "Square", "graphs": ["shared_subexpr"]}

import numpy as np

from reference.core import CompNode


class Square(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = self.x.value ** 2

    def backward(self):
        self.x.grad += self.grad * self.x.value
