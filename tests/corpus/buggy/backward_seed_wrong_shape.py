"""Backward: ``loss.grad = np.ones(1)`` ("a vector of one 1").

The loss is 0-d, its grad becomes shape (1,): NumPy broadcasting hides it in the
numbers, but a gradient must have its value's shape.
"""
EXPECT = {"diagnosis": "grad_shape", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones(1)
    for c in reversed(components):
        c.backward()
