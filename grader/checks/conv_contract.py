"""The convolution components' contract, read from their declarations (``reference/conv.py``):
operands, constructor arguments and forward formulas, under the names the conv checks use.
Child-safe: NumPy only.

Conv2D is a cross-correlation (the kernel is not flipped), as in every framework.
"""
import numpy as np

from .contract import FORMULAS, KWARGS, OPERANDS
from .notation import _offset_slices, conv_out_size  # noqa: F401  (the conv checks' names for them)
from .types import Shape

_CONV = ("Conv2D", "MaxPool2D", "Flatten")

CONV_OPERANDS = {name: OPERANDS[name] for name in _CONV if name in OPERANDS}

# keyword arguments of each constructor, with their defaults
CONV_KWARGS = {name: KWARGS[name] for name in _CONV if name in KWARGS}

CONV_FORMULAS = {name: FORMULAS[name] for name in _CONV if name in FORMULAS}


def conv2d_formula(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """v[n, f, i, j] = b[f] + sum_{c,k,l} W[f, c, k, l] x_pad[n, c, i*s + k, j*s + l]."""
    return FORMULAS["Conv2D"](x, W, b, stride=stride, padding=padding)


def maxpool2d_formula(x: np.ndarray, size: int = 2, stride: int = 2) -> np.ndarray:
    """v[n, c, i, j] = max over the (size, size) window at (i*s, j*s)."""
    return FORMULAS["MaxPool2D"](x, size=size, stride=stride)


def flatten_formula(x: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, prod(...))."""
    return FORMULAS["Flatten"](x)


def sample_distinct(shape: Shape, rng
: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Entries pairwise at least 0.015 * scale apart, in random order: no two entries of a
    pooling window tie, even after a central-difference step."""
    n = int(np.prod(shape))
    spread = max(2.0 / max(n, 1), 0.02)
    vals = (np.arange(n) - (n - 1) / 2) * spread + rng.uniform(0.0, 0.25 * spread, size=n)
    return (rng.permutation(vals) * scale).reshape(tuple(shape))
