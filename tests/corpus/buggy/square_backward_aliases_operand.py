"""Square: "d = 2x", computed in place on a name that is the operand's array.

``d = self.x.value`` is not a copy, so ``d *= 2`` doubles the operand's value.
The gradient returned is right; the graph's value of x is not any more.
"""
EXPECT = {"diagnosis": "operand_mutated", "component": "Square", "graphs": ["shared_subexpr"]}

import numpy as np

from reference.core import CompNode


class Square(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = self.x.value ** 2

    def backward(self):
        d = self.x.value
        d *= 2
        self.x.grad += self.grad * d
