"""Add: "I sum the bias gradient over the batch, keepdims=True to be safe."

The sum is right but ``keepdims=True`` leaves a leading axis: a bias of shape (O,)
gets a grad of shape (1, O). Written with ``grad = grad + ...`` so it does not crash.
"""
EXPECT = {"diagnosis": "grad_shape", "component": "Add", "graphs": ["mlp2"]}

import numpy as np

from reference.core import CompNode


def reduce_to(grad, value):
    """Sum the batch axis away when the operand was broadcast."""
    if np.shape(value) != grad.shape:
        return grad.sum(axis=0, keepdims=True)
    return grad


class Add(CompNode):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = self.a.value + self.b.value

    def backward(self):
        self.a.grad = self.a.grad + reduce_to(self.grad, self.a.value)
        self.b.grad = self.b.grad + reduce_to(self.grad, self.b.value)
