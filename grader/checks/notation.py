"""The notation of the course notes that component formulas are written in (child-safe).

A contract's ``formula`` (declared beside its class in ``reference/``) is a NumPy
expression over its operands; these are the operations of the notes it may use beyond
NumPy (``NOTATION``). Each is written from its definition, never from the reference's
``forward``: a loop over kernel offsets, not im2col.
"""
import numpy as np


def notation_sigmoid(x: np.ndarray) -> np.ndarray:
    """sigma(x) = 1 / (1 + exp(-x)), as 0.5 + 0.5 tanh(x / 2): saturates, never overflows."""
    return 0.5 + 0.5 * np.tanh(0.5 * np.asarray(x, dtype=float))


def logsumexp(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """log sum_j exp(z_j) over ``axis``, without overflow."""
    return np.logaddexp.reduce(np.asarray(z, dtype=float), axis=axis)


def pick(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's entry at its integer label: z[n, labels[n]]."""
    z = np.asarray(z)
    return z[np.arange(z.shape[0]), np.asarray(labels).astype(int)]


def conv_out_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """floor((n + 2p - k) / s) + 1 window positions along an axis."""
    return (int(n) + 2 * int(padding) - int(k)) // int(stride) + 1


def _offset_slices(k: int, l: int, oh: int, ow: int, s: int) -> tuple:
    """Rows k, k+s, ..., k+s(oh-1) and columns l, ..., l+s(ow-1): the pixels that kernel
    offset (k, l) meets at each output position."""
    return (slice(None), slice(None), slice(k, k + s * (oh - 1) + 1, s), slice(l, l + s * (ow - 1) + 1, s))


def correlate2d(x: np.ndarray, W: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """sum_{c,k,l} W[f, c, k, l] x_pad[n, c, i*s + k, j*s + l]: images (N, C, H, W) against a
    kernel bank (F, C, KH, KW), zero-padded by ``padding``, the kernel not flipped."""
    x, W = np.asarray(x, dtype=float), np.asarray(W, dtype=float)
    p, s = int(padding), int(stride)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    F, C, KH, KW = W.shape
    oh, ow = conv_out_size(x.shape[2], KH, s, p), conv_out_size(x.shape[3], KW, s, p)
    out = np.zeros((x.shape[0], F, oh, ow))
    for k in range(KH):
        for l in range(KW):
            out = out + np.einsum("nchw,fc->nfhw", xp[_offset_slices(k, l, oh, ow, s)], W[:, :, k, l])
    return out


def window_max(x: np.ndarray, size: int = 2, stride: int = 2) -> np.ndarray:
    """v[n, c, i, j] = max over the (size, size) window at (i*s, j*s)."""
    x = np.asarray(x, dtype=float)
    k, s = int(size), int(stride)
    oh, ow = conv_out_size(x.shape[2], k, s), conv_out_size(x.shape[3], k, s)
    out = np.full((x.shape[0], x.shape[1], oh, ow), -np.inf)
    for a in range(k):
        for c in range(k):
            out = np.maximum(out, x[_offset_slices(a, c, oh, ow, s)])
    return out


NOTATION = {"np": np, "sigmoid": notation_sigmoid, "logsumexp": logsumexp, "pick": pick,
            "correlate2d": correlate2d, "window_max": window_max}
