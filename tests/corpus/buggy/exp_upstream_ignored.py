"""Exp: "the derivative of exp is exp", so x_bar = exp(x).

``self.grad`` is never multiplied in: right only when Exp is the loss itself.
"""
EXPECT = {"diagnosis": "upstream_ignored", "component": "Exp", "graphs": ["random_exp"]}

import numpy as np

from reference.core import CompNode


class Exp(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.exp(self.x.value)

    def backward(self):
        self.x.grad += self.value
