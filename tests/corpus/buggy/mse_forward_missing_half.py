"""MSE: mean((y - t)^2), "mean squared error is the mean of the squared errors".

The course's MSE has a 1/2 in front; this forward is twice the contract's value.
"""
EXPECT = {"diagnosis": "forward_wrong", "component": "MSE", "graphs": []}

import numpy as np

from reference.core import CompNode, unbroadcast


class MSE(CompNode):
    def __init__(self, y, t):
        super().__init__()
        self.y, self.t = y, t

    def forward(self):
        self.value = np.asarray(np.mean((self.y.value - self.t.value) ** 2))

    def backward(self):
        diff = self.y.value - self.t.value
        g = self.grad * 2 * diff / diff.size
        self.y.grad += unbroadcast(g, self.y.value.shape)
        self.t.grad -= unbroadcast(g, self.t.value.shape)
