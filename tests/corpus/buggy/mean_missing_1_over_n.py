"""Mean: "the mean is a sum, so its gradient is the sum's", forgetting 1/N.

x_bar = v_bar instead of v_bar / size(x).
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
        self.x.grad += self.grad * np.ones_like(self.x.value)
