"""Tanh: the textbook (e^x - e^-x) / (e^x + e^-x).

Beyond |x| of about 710 both exponentials are inf or 0 and the ratio is inf / inf = NaN.
"""
EXPECT = {"diagnosis": "non_finite", "component": "Tanh", "graphs": []}

import numpy as np

from reference.core import CompNode


class Tanh(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        ep, em = np.exp(self.x.value), np.exp(-self.x.value)
        self.value = (ep - em) / (ep + em)

    def backward(self):
        self.x.grad += self.grad * (1 - self.value ** 2)
