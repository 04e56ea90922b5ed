"""Mul: correct local derivatives, but the broadcast operand's grad is not summed.

"Mul is elementwise, so each grad is elementwise too." A per-feature scale of shape
(O,) multiplied into a batch (N, O) gets an (N, O) gradient, and ``+=`` raises.
"""
EXPECT = {"diagnosis": "bias_not_summed", "component": "Mul", "graphs": ["random_mul"]}

import numpy as np

from reference.core import CompNode


class Mul(CompNode):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = self.a.value * self.b.value

    def backward(self):
        self.a.grad += self.grad * self.b.value
        self.b.grad += self.grad * self.a.value
