"""ReLU: "set the negatives to zero" on the operand's own array.

``x = self.x.value; x[x < 0] = 0`` clips the input node's value in place; the
value is even shared with the component (``self.value is self.x.value``).
"""
EXPECT = {"diagnosis": "operand_mutated", "component": "ReLU", "graphs": ["mlp2"]}

import numpy as np

from reference.core import CompNode


class ReLU(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        x = self.x.value
        x[x < 0] = 0
        self.value = x

    def backward(self):
        self.x.grad += self.grad * (self.x.value > 0)
