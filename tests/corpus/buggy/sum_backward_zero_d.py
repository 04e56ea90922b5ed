"""Sum: ``self.x.grad = self.grad``: "the gradient of a sum is just the upstream gradient".

The 0-d upstream replaces x's grad, which then has shape () instead of x's shape: a grad
shape error (not a broadcast operand left unsummed: Sum reduces, nothing was broadcast).
"""
EXPECT = {"diagnosis": "grad_shape", "component": "Sum", "graphs": ["shared_subexpr"]}

import numpy as np

from reference.core import CompNode


class Sum(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.asarray(np.sum(self.x.value))

    def backward(self):
        self.x.grad = self.grad
