"""Backward: "start from the loss": ``loss.backward()``, then the reverse loop.

The loop processes the loss again, so its operands receive its gradient twice.
"""
EXPECT = {"diagnosis": "wrong_order", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    loss.backward()
    for c in reversed(components):
        c.backward()
