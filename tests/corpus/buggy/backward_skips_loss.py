"""Backward: "the loss's grad is already seeded", so the loop starts one before it.

``components[-2::-1]`` skips the loss component itself: nothing is ever propagated.
"""
EXPECT = {"diagnosis": "wrong_order", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in components[-2::-1]:
        c.backward()
