"""MSE: "both operands get (y - t) / n" — the target's minus sign forgotten.

y_bar is right; t_bar should be -(y - t) / n.
"""
EXPECT = {"diagnosis": "sign_error", "component": "MSE", "graphs": []}

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
        g = self.grad * diff / diff.size
        self.y.grad += unbroadcast(g, self.y.value.shape)
        self.t.grad += unbroadcast(g, self.t.value.shape)
