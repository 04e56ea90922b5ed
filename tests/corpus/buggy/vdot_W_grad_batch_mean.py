"""VDot: "the weight gradient is averaged over the batch".

The student divides W_bar by the batch size; the mean is the loss's job (Mean,
SoftmaxCrossEntropy), so here it is off by a factor 1/N.
"""
EXPECT = {"diagnosis": "wrong_factor", "component": "VDot", "graphs": ["mlp2"]}

import numpy as np

from reference.core import CompNode


class VDot(CompNode):
    def __init__(self, x, W):
        super().__init__()
        self.x, self.W = x, W

    def forward(self):
        self.value = self.x.value @ self.W.value

    def backward(self):
        I, O = self.W.value.shape
        x2, g2 = self.x.value.reshape(-1, I), self.grad.reshape(-1, O)
        self.x.grad += self.grad @ self.W.value.T
        self.W.grad += x2.T @ g2 / len(x2)
