"""Backward: grads reset with ``node.grad = 0``, "broadcasting will make it the right shape".

``+=`` does grow a grad to an array when something is added, but a node that
receives nothing (a label input, an unused node) keeps a Python int 0, and the
check sees grads without their value's shape before the first step.
"""
EXPECT = {"diagnosis": "grad_shape", "component": "Backward",
          "graphs": ["mlp2", "shared_subexpr", "random_mul"]}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    for node in components + params + inputs:
        node.grad = 0
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in reversed(components):
        c.backward()
