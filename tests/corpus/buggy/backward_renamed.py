"""Backward: defined as ``backward(loss)``, lower case like the method.

The notebook has no ``Backward``; the course's training loop and every loop test fail.
"""
EXPECT = {"diagnosis": "missing", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in reversed(components):
        c.backward()
