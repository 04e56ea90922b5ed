"""Backward: grads created once, "only if the node doesn't have one yet".

The first call is right; every later call (the next SGD step) adds onto the old
gradients.
"""
EXPECT = {"diagnosis": "grads_not_zeroed", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    for node in components + params + inputs:
        if not hasattr(node, "grad"):
            node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in reversed(components):
        c.backward()
