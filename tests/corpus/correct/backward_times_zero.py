"""Backward that zeroes reused grad arrays with ``grad *= 0``, and seeds with ``+= 1``."""
import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    for node in components + params + inputs:
        if hasattr(node, "grad") and np.shape(node.grad) == np.shape(node.value):
            node.grad = np.asarray(node.grad, dtype=float)
            node.grad *= 0
        else:
            node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad += 1
    for i in range(len(components) - 1, -1, -1):
        components[i].backward()
