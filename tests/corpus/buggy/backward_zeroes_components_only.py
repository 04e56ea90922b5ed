"""Backward: "the intermediate grads must be reset; parameters keep theirs".

Components are zeroed on every call, parameters and inputs only get a grad the
first time: their gradients pile up from one call to the next.
"""
EXPECT = {"diagnosis": "grads_not_zeroed", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    for c in components:
        c.grad = np.zeros_like(c.value, dtype=float)
    for leaf in params + inputs:
        if not hasattr(leaf, "grad"):
            leaf.grad = np.zeros_like(leaf.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in reversed(components):
        c.backward()
