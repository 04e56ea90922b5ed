"""Add: "the derivative of a + b is 1 for both, so both operands get self.grad."

The student never reduces the upstream gradient to the operand's shape. With a bias
of shape (O,) added to a batch (N, O) the bias grad becomes (N, O) instead of the
batch sum. Written with ``x.grad = x.grad + ...`` so NumPy does not complain.
"""
EXPECT = {"diagnosis": "bias_not_summed", "component": "Add", "graphs": ["mlp2"]}

import numpy as np

from reference.core import CompNode


class Add(CompNode):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = self.a.value + self.b.value

    def backward(self):
        self.a.grad = self.a.grad + self.grad
        self.b.grad = self.b.grad + self.grad
