"""The EDF core: the computation graph as three lists, and Forward / Backward / SGD.

A graph is built by constructing nodes: every component appends itself to
``components`` on creation, so ``components`` is always in a topological order.
``Backward`` walks it in reverse, each component adding its contribution to its
operands' ``grad`` with ``+=`` (a node used twice receives two contributions).
"""
from __future__ import annotations

import numpy as np

# region graph_lists
components: list = []
params: list = []
inputs: list = []
# endregion


def clear_compgraph() -> None:
    """Empty the three lists in place (other modules hold references to them)."""
    components.clear()
    params.clear()
    inputs.clear()


def as_float_array(value) -> np.ndarray:
    """A fresh array of ``value``; integers become float64, float dtypes are kept."""
    a = np.array(value)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def zeros_like_grad(value) -> np.ndarray:
    """Zeros of ``value``'s shape, in its float dtype (float64 for integer values)."""
    value = np.asarray(value)
    dtype = value.dtype if np.issubdtype(value.dtype, np.floating) else np.float64
    return np.zeros(value.shape, dtype=dtype)


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` back to ``shape``: the adjoint of NumPy broadcasting.

    Broadcasting copies an operand along new leading axes and along axes of
    length 1, so its gradient sums over exactly those axes (a bias of shape
    ``(O,)`` added to ``(N, O)`` gets the batch sum of the upstream gradient).
    """
    grad = np.asarray(grad)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if kept:
        grad = grad.sum(axis=kept, keepdims=True)
    return grad


class Input:
    """A leaf whose value the caller sets (data, labels)."""

    def __init__(self, value=None):
        inputs.append(self)
        self.value = None if value is None else np.asarray(value)

    def set(self, value) -> None:
        self.value = np.asarray(value)


class Parameter:
    """A trainable leaf; ``SGD`` updates its value in place."""

    def __init__(self, value):
        params.append(self)
        self.value = as_float_array(value)


class CompNode:
    """Base class of components: creating one appends it to ``components``."""

    def __init__(self):
        components.append(self)

    def forward(self) -> None:
        raise NotImplementedError

    def backward(self) -> None:
        raise NotImplementedError


def Forward() -> None:
    """Compute every component's value, in creation (topological) order."""
    for c in components:
        c.forward()


def Backward(loss) -> None:
    """Zero every grad, seed ``loss.grad`` with ones, backpropagate in reverse order.

    Loop invariant: after the components in a suffix S of ``components`` have run
    ``backward()``, every node's grad is d loss / d node for the program made of S.
    """
    for node in components + params + inputs:
        node.grad = zeros_like_grad(node.value)
    loss.grad = np.ones_like(loss.grad)
    for c in components[::-1]:
        c.backward()


def SGD(eta: float) -> None:
    """One gradient step on every parameter: value -= eta * grad."""
    for p in params:
        p.value -= eta * p.grad
