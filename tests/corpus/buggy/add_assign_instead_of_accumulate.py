"""Add: "a_bar is v_bar", written literally as an assignment.

``self.a.grad = ...`` overwrites whatever another consumer of ``a`` already
added (a residual connection, ``x + x``, a node used twice).
"""
EXPECT = {"diagnosis": "assign_not_accumulate", "component": "Add",
          "graphs": ["x_times_x_plus_1", "shared_subexpr"]}

import numpy as np

from reference.core import CompNode, unbroadcast


class Add(CompNode):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = self.a.value + self.b.value

    def backward(self):
        self.a.grad = unbroadcast(self.grad, self.a.value.shape)
        self.b.grad = unbroadcast(self.grad, self.b.value.shape)
