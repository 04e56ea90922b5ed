"""MSE: "d/dy (y - t)^2 = 2 (y - t)", forgetting that the 1/2 in front cancels the 2.

The forward has the 1/2; the backward is twice too large.
"""
EXPECT = {"diagnosis": "wrong_factor", "component": "MSE", "graphs": []}

import numpy as np

from reference.core import CompNode, unbroadcast


class MSE(CompNode):
    def __init__(self, y, t):
        super().__init__()
        self.y, self.t = y, t

    def forward(self):
        self.value = np.asarray(0.5 * np.mean((self.y.value - self.t.value) ** 2))

    def backward(self):
        diff = self.y.value - self.t.value
        g = self.grad * 2 * diff / diff.size
        self.y.grad += unbroadcast(g, self.y.value.shape)
        self.t.grad -= unbroadcast(g, self.t.value.shape)
