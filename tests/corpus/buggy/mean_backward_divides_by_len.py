"""Mean: divides by ``len(x)`` ("the number of examples") instead of the element count.

Right for a vector, off by a factor of the row length for a batch (N, C).
"""
EXPECT = {"diagnosis": "wrong_factor", "component": "Mean", "graphs": ["random_mean"]}

import numpy as np

from reference.core import CompNode


class Mean(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.asarray(np.mean(self.x.value))

    def backward(self):
        self.x.grad += self.grad * np.ones_like(self.x.value) / len(self.x.value)
