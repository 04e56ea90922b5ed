"""VDot: W_bar = v_bar^T @ x, "grad times input" in the order of the chain rule.

That is the transpose of x^T @ v_bar: shape (O, I) instead of (I, O); with a
square W it silently returns the transposed gradient.
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
        self.x.grad += self.grad @ self.W.value.T
        self.W.grad += self.grad.reshape(-1, O).T @ self.x.value.reshape(-1, I)
