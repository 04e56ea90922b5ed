"""Exp: ``math.exp`` because "exp is in the math module".

Works on the 0-d scalar the student tried, raises TypeError ("only length-1
arrays can be converted to Python scalars") on any batch.
"""
EXPECT = {"diagnosis": "exception", "component": "Exp", "graphs": ["random_exp"]}

import math

import numpy as np

from reference.core import CompNode


class Exp(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.asarray(math.exp(self.x.value))

    def backward(self):
        self.x.grad += self.grad * self.value
