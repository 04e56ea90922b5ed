"""Exp: ``self.x.grad = self.grad * self.value`` ("x_bar = v_bar * exp(x)" copied literally).

Overwrites the contribution of any other consumer of x.
"""
EXPECT = {"diagnosis": "assign_not_accumulate", "component": "Exp", "graphs": ["random_exp"]}

import numpy as np

from reference.core import CompNode


class Exp(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.exp(self.x.value)

    def backward(self):
        self.x.grad = self.grad * self.value
