"""Backward: "only the parameters' gradients matter for SGD", so only they are zeroed.

Components and inputs are never given a zero grad: on a fresh graph their
``grad`` does not exist yet, and on a reused graph it holds the previous call's.
"""
EXPECT = {"diagnosis": "grads_not_zeroed", "component": "Backward"}

import numpy as np

from reference.core import components, params


def Backward(loss):
    for p in params:
        p.grad = np.zeros_like(p.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in reversed(components):
        c.backward()
