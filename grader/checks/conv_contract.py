"""The convolution components' contract: operands, constructor arguments and forward
formulas as stated in the notes, written independently of the reference (a loop over the
kernel offsets, not im2col). Child-safe: NumPy only.

Conv2D is a cross-correlation (the kernel is not flipped), as in every framework.
"""
import numpy as np


CONV_OPERANDS = {"Conv2D": ("x", "W", "b"), "MaxPool2D": ("x",), "Flatten": ("x",)}

# keyword arguments of each constructor, with their defaults
CONV_KWARGS = {"Conv2D": {"stride": 1, "padding": 0}, "MaxPool2D": {"size": 2, "stride": 2}, "Flatten": {}}


def conv_out_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """floor((n + 2p - k) / s) + 1 window positions along an axis."""
    return (int(n) + 2 * int(padding) - int(k)) // int(stride) + 1


def _offset_slices(k: int, l: int, oh: int, ow: int, s: int) -> tuple:
    """Rows k, k+s, ..., k+s(oh-1) and columns l, ..., l+s(ow-1): the pixels that kernel
    offset (k, l) meets at each output position."""
    return (slice(None), slice(None), slice(k, k + s * (oh - 1) + 1, s), slice(l, l + s * (ow - 1) + 1, s))


def conv2d_formula(x, W, b, stride=1, padding=0):
    """v[n, f, i, j] = b[f] + sum_{c,k,l} W[f, c, k, l] x_pad[n, c, i*s + k, j*s + l]."""
    x, W, b = np.asarray(x, dtype=float), np.asarray(W, dtype=float), np.asarray(b, dtype=float)
    p, s = int(padding), int(stride)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    F, C, KH, KW = W.shape
    oh, ow = conv_out_size(x.shape[2], KH, s, p), conv_out_size(x.shape[3], KW, s, p)
    out = np.zeros((x.shape[0], F, oh, ow)) + b[None, :, None, None]
    for k in range(KH):
        for l in range(KW):
            out = out + np.einsum("nchw,fc->nfhw", xp[_offset_slices(k, l, oh, ow, s)], W[:, :, k, l])
    return out


def maxpool2d_formula(x, size=2, stride=2):
    """v[n, c, i, j] = max over the (size, size) window at (i*s, j*s)."""
    x = np.asarray(x, dtype=float)
    k, s = int(size), int(stride)
    oh, ow = conv_out_size(x.shape[2], k, s), conv_out_size(x.shape[3], k, s)
    out = np.full((x.shape[0], x.shape[1], oh, ow), -np.inf)
    for a in range(k):
        for c in range(k):
            out = np.maximum(out, x[_offset_slices(a, c, oh, ow, s)])
    return out


def flatten_formula(x):
    """(N, ...) -> (N, prod(...))."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1)


CONV_FORMULAS = {"Conv2D": conv2d_formula, "MaxPool2D": maxpool2d_formula, "Flatten": flatten_formula}


def sample_distinct(shape, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Entries pairwise at least 0.015 * scale apart, in random order: no two entries of a
    pooling window tie, even after a central-difference step."""
    n = int(np.prod(shape))
    spread = max(2.0 / max(n, 1), 0.02)
    vals = (np.arange(n) - (n - 1) / 2) * spread + rng.uniform(0.0, 0.25 * spread, size=n)
    return (rng.permutation(vals) * scale).reshape(tuple(shape))
