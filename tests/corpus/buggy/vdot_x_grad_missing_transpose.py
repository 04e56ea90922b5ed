"""VDot: x_bar = v_bar @ W, "the same matrix as in the forward pass".

The transpose is missing (v_bar @ W^T is right). It even runs whenever W is square.
"""
EXPECT = {"diagnosis": "matmul_transposed", "component": "VDot", "graphs": ["mlp2"]}

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
        self.x.grad += self.grad @ self.W.value
        self.W.grad += self.x.value.reshape(-1, I).T @ self.grad.reshape(-1, O)
