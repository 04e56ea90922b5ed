"""MSE: ``diff = self.y.value; diff -= self.t.value``, "reuse the array".

``diff`` is the prediction node's own array: the forward overwrites y with y - t.
"""
EXPECT = {"diagnosis": "operand_mutated", "component": "MSE", "graphs": []}

import numpy as np

from reference.core import CompNode, unbroadcast


class MSE(CompNode):
    def __init__(self, y, t):
        super().__init__()
        self.y, self.t = y, t

    def forward(self):
        diff = self.y.value
        diff -= self.t.value
        self.value = np.asarray(0.5 * np.mean(diff ** 2))

    def backward(self):
        diff = self.y.value - self.t.value
        g = self.grad * diff / diff.size
        self.y.grad += unbroadcast(g, self.y.value.shape)
        self.t.grad -= unbroadcast(g, self.t.value.shape)
