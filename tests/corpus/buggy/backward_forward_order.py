"""Backward: the components in creation order, "the same loop as Forward".

Every component runs before the components that consume it, so it propagates a
gradient that is still zero.
"""
EXPECT = {"diagnosis": "wrong_order", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in components:
        c.backward()
