"""Add: "both operands just get self.grad" written with ``+=``.

Same misconception as add_bias_grad_not_unbroadcast, but with ``+=``: for a bias
of shape (O,) NumPy raises "non-broadcastable output operand with shape (O,)
doesn't match the broadcast shape (N, O)". It passes every unbatched test.
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
        self.a.grad += self.grad
        self.b.grad += self.grad
