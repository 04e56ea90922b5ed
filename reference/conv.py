"""Convolution as EDF components: ``Conv2D``, ``MaxPool2D``, ``Flatten``.

Images are batches of shape ``(N, C, H, W)``: N examples, C channels, H rows, W columns.
Each component is vectorised NumPy: a strided view (``sliding_window_view``) gives every
window of the input at once, and one ``tensordot`` contracts all of them with the kernel
(im2col). The only Python loop is over the KH * KW kernel offsets in ``Conv2D.backward``
(9 iterations for a 3x3 kernel), never over pixels.

Output size along one axis, for input size n, kernel size k, stride s and padding p:
``(n + 2p - k) // s + 1`` (``output_size``).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .core import CompNode


def output_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """The number of window positions along an axis: floor((n + 2p - k) / s) + 1."""
    return (n + 2 * padding - k) // stride + 1


def windows(x: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """Every (kh, kw) window of ``x`` (N, C, H, W) at the given stride, as a view of
    shape (N, C, OH, OW, kh, kw): ``windows(x)[n, c, i, j]`` is the patch whose top-left
    corner is at row ``i * stride``, column ``j * stride``."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


class Conv2D(CompNode):
    """2-D convolution layer as in every deep-learning framework: a cross-correlation.

    x (N, C, H, W), W (F, C, KH, KW), b (F,); with x zero-padded by ``padding`` on each side,
    v[n, f, i, j] = b[f] + sum_{c, k, l} W[f, c, k, l] * x[n, c, i*s + k, j*s + l],
    the kernel slid over the image *without* flipping it (a true convolution would flip it).

    Backward, contracting with v_bar (N, F, OH, OW):
    b_bar[f] = sum_{n, i, j} v_bar[n, f, i, j] (the bias is shared by every position),
    W_bar[f, c, k, l] = sum_{n, i, j} v_bar[n, f, i, j] * x[n, c, i*s + k, j*s + l],
    x_bar[n, c, i*s + k, j*s + l] += sum_f v_bar[n, f, i, j] * W[f, c, k, l]
    (computed on the padded image; the padding's grad is dropped).
    """

    def __init__(self, x, W, b, stride: int = 1, padding: int = 0):
        super().__init__()
        self.x, self.W, self.b = x, W, b
        self.stride, self.padding = stride, padding

    def _padded(self) -> np.ndarray:
        """x.value with ``padding`` rows and columns of zeros on each side."""
        p = self.padding
        return np.pad(self.x.value, ((0, 0), (0, 0), (p, p), (p, p)))

    def forward(self):
        F, C, KH, KW = self.W.value.shape
        cols = windows(self._padded(), KH, KW, self.stride)  # (N, C, OH, OW, KH, KW)
        out = np.tensordot(cols, self.W.value, axes=([1, 4, 5], [1, 2, 3]))  # (N, OH, OW, F)
        self.value = out.transpose(0, 3, 1, 2) + self.b.value[:, None, None]

    def backward(self):
        F, C, KH, KW = self.W.value.shape
        s, p = self.stride, self.padding
        xp = self._padded()
        cols = windows(xp, KH, KW, s)
        g = self.grad  # (N, F, OH, OW)
        OH, OW = g.shape[2:]
        self.b.grad += g.sum(axis=(0, 2, 3))
        self.W.grad += np.tensordot(g, cols, axes=([0, 2, 3], [0, 2, 3]))  # (F, C, KH, KW)
        g_cols = np.tensordot(g, self.W.value, axes=([1], [0]))  # (N, OH, OW, C, KH, KW)
        g_xp = np.zeros(xp.shape, dtype=np.result_type(g_cols, float))
        # kernel offset (k, l) touches pixel (i*s + k, j*s + l): one strided add per offset
        for k in range(KH):
            for l in range(KW):
                g_xp[:, :, k:k + s * (OH - 1) + 1:s, l:l + s * (OW - 1) + 1:s] += \
                    g_cols[:, :, :, :, k, l].transpose(0, 3, 1, 2)
        H, W = self.x.value.shape[2:]
        self.x.grad += g_xp[:, :, p:p + H, p:p + W]


class MaxPool2D(CompNode):
    """The maximum of every (size, size) window at the given stride, per channel.

    x (N, C, H, W) -> v (N, C, OH, OW). Backward routes each v_bar[n, c, i, j] to the one
    input entry that was the window's maximum (its derivative is 1, every other entry's 0);
    an entry that is the maximum of several overlapping windows receives all their grads.
    """

    def __init__(self, x, size: int = 2, stride: int = 2):
        super().__init__()
        self.x = x
        self.size, self.stride = size, stride

    def forward(self):
        k, s = self.size, self.stride
        N, C, H, W = self.x.value.shape
        win = windows(self.x.value, k, k, s)
        OH, OW = win.shape[2:4]
        flat = win.reshape(N, C, OH, OW, k * k)
        arg = flat.argmax(axis=-1)
        # the flat index into x of each window's maximum, for backward
        rows = np.arange(OH)[:, None] * s + arg // k
        cols = np.arange(OW)[None, :] * s + arg % k
        self.argmax = (np.arange(N * C).reshape(N, C, 1, 1) * H + rows) * W + cols
        self.value = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]

    def backward(self):
        x = self.x.value
        routed = np.bincount(self.argmax.ravel(), weights=np.ravel(self.grad), minlength=x.size)
        self.x.grad += routed.reshape(x.shape)


class Flatten(CompNode):
    """Each example's entries as one row: (N, ...) -> (N, prod(...)); x_bar = v_bar reshaped."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = self.x.value.reshape(len(self.x.value), -1)

    def backward(self):
        self.x.grad += self.grad.reshape(self.x.value.shape)
