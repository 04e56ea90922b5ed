"""Backward: everything zeroed, but ``loss.grad`` never set to 1.

"The loss's grad is zeroed with the others, then backward does the rest": every
gradient stays zero.
"""
EXPECT = {"diagnosis": "loss_not_seeded", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    for c in reversed(components):
        c.backward()
