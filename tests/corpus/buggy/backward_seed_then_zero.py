"""Backward: seeds ``loss.grad`` first, then zeroes every grad — the loss's included.

The two set-up steps in the wrong order: the seed is wiped before the loop starts.
"""
EXPECT = {"diagnosis": "loss_not_seeded", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    loss.grad = np.ones_like(loss.value, dtype=float)
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    for c in reversed(components):
        c.backward()
