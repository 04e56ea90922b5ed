"""Mean: ``np.sum(x) / len(x)``, "the average over the batch".

For a batch (N, C) this divides by N only: the forward value is C times too large.
"""
EXPECT = {"diagnosis": "forward_wrong", "component": "Mean", "graphs": ["random_mean"]}

import numpy as np

from reference.core import CompNode


class Mean(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.asarray(np.sum(self.x.value) / len(self.x.value))

    def backward(self):
        self.x.grad += self.grad * np.ones_like(self.x.value) / len(self.x.value)
