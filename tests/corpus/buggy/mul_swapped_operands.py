"""Mul: "the derivative of a*b with respect to a is ... a?"

The student multiplies each operand's gradient by its *own* value instead of the
other operand's: a_bar = v_bar * a, b_bar = v_bar * b.
"""
EXPECT = {"diagnosis": "wrong_gradient", "component": "Mul",
          "graphs": ["x_times_x_plus_1", "shared_subexpr", "random_mul"]}

import numpy as np

from reference.core import CompNode, unbroadcast


class Mul(CompNode):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = self.a.value * self.b.value

    def backward(self):
        self.a.grad += unbroadcast(self.grad * self.a.value, self.a.value.shape)
        self.b.grad += unbroadcast(self.grad * self.b.value, self.b.value.shape)
