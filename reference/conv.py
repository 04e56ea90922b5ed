"""Convolution as EDF components: ``Conv2D``, ``MaxPool2D``, ``Flatten``.

Images are batches of shape ``(N, C, H, W)``: N examples, C channels, H rows, W columns.
Each component is vectorised NumPy. ``Conv2D`` copies every window of the padded input into
the columns of one matrix (im2col) and multiplies it with the kernel as one matrix product;
the only Python loops are over the KH * KW kernel offsets in ``im2col`` and its adjoint
``col2im`` (9 iterations for a 3x3 kernel), never over pixels. ``MaxPool2D`` takes the
windows as a strided view (``sliding_window_view``).

Output size along one axis, for input size n, kernel size k, stride s and padding p:
``(n + 2p - k) // s + 1`` (``output_size``).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .contract import declare
from .core import CompNode


def output_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """The number of window positions along an axis: floor((n + 2p - k) / s) + 1."""
    return (n + 2 * padding - k) // stride + 1


def windows(x: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """Every (kh, kw) window of ``x`` (N, C, H, W) at the given stride, as a view of
    shape (N, C, OH, OW, kh, kw): ``windows(x)[n, c, i, j]`` is the patch whose top-left
    corner is at row ``i * stride``, column ``j * stride``."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


def im2col(xp: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """The windows of the padded image ``xp`` (N, C, H, W) as the columns of one matrix.

    Row ``(c, k, l)`` and column ``(n, i, j)`` hold ``xp[n, c, i*s + k, j*s + l]``: shape
    (C * kh * kw, N * OH * OW). One strided copy per kernel offset (k, l), kh * kw in all.
    """
    N, C, H, W = xp.shape
    oh, ow = output_size(H, kh, stride), output_size(W, kw, stride)
    # zeros, not empty: every entry is written once, and a `+=` for `=` then gives the same
    # result on every run instead of whatever the memory held (the audit sees it as equivalent)
    cols = np.zeros((C, kh, kw, N, oh, ow), dtype=xp.dtype)
    by_channel = xp.transpose(1, 0, 2, 3)
    for k in range(kh):
        for l in range(kw):
            cols[:, k, l] = by_channel[:, :, k:k + stride * (oh - 1) + 1:stride, l:l + stride * (ow - 1) + 1:stride]
    return cols.reshape(C * kh * kw, N * oh * ow)


def col2im(g_cols: np.ndarray, shape: tuple, kh: int, kw: int, stride: int) -> np.ndarray:
    """The adjoint of ``im2col``: adds every column entry back onto the pixel it was copied
    from (a pixel in several windows collects all of them), giving an array of ``shape``."""
    N, C, H, W = shape
    oh, ow = output_size(H, kh, stride), output_size(W, kw, stride)
    g_cols = g_cols.reshape(C, kh, kw, N, oh, ow)
    g = np.zeros((C, N, H, W), dtype=g_cols.dtype)
    for k in range(kh):
        for l in range(kw):
            g[:, :, k:k + stride * (oh - 1) + 1:stride, l:l + stride * (ow - 1) + 1:stride] += g_cols[:, k, l]
    return g.transpose(1, 0, 2, 3)


class Conv2D(CompNode):
    """2-D convolution layer as in every deep-learning framework: a cross-correlation.

    x (N, C, H, W), W (F, C, KH, KW), b (F,); with x zero-padded by ``padding`` on each side,
    v[n, f, i, j] = b[f] + sum_{c, k, l} W[f, c, k, l] * x[n, c, i*s + k, j*s + l],
    the kernel slid over the image *without* flipping it (a true convolution would flip it).
    With the windows as columns (``im2col``) this is one matrix product, W (F, C*KH*KW)
    times cols (C*KH*KW, N*OH*OW).

    Backward, contracting with v_bar (N, F, OH, OW):
    b_bar[f] = sum_{n, i, j} v_bar[n, f, i, j] (the bias is shared by every position),
    W_bar[f, c, k, l] = sum_{n, i, j} v_bar[n, f, i, j] * x[n, c, i*s + k, j*s + l],
    x_bar[n, c, i*s + k, j*s + l] += sum_f v_bar[n, f, i, j] * W[f, c, k, l]
    (computed on the padded image by ``col2im``; the padding's grad is dropped).
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
        N, _, H, W = self.x.value.shape
        s, p = self.stride, self.padding
        oh, ow = output_size(H, KH, s, p), output_size(W, KW, s, p)
        self.cols = im2col(self._padded(), KH, KW, s)  # kept for backward
        out = self.W.value.reshape(F, -1) @ self.cols  # (F, N * OH * OW)
        self.value = out.reshape(F, N, oh, ow).transpose(1, 0, 2, 3) + self.b.value[:, None, None]

    def backward(self):
        F, C, KH, KW = self.W.value.shape
        N, _, H, W = self.x.value.shape
        s, p = self.stride, self.padding
        g = self.grad.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, N * OH * OW)
        self.b.grad += g.sum(axis=1)
        self.W.grad += (g @ self.cols.T).reshape(self.W.value.shape)
        g_cols = self.W.value.reshape(F, -1).T @ g
        g_padded = col2im(g_cols, (N, C, H + 2 * p, W + 2 * p), KH, KW, s)
        self.x.grad += g_padded[:, :, p:p + H, p:p + W]


declare(Conv2D, ("x", "W", "b"), "correlate2d(x, W, stride, padding) + b[None, :, None, None]",
        "v[n, f, i, j] = b[f] + sum_{c, k, l} W[f, c, k, l] * x_pad[n, c, i*s + k, j*s + l] (the kernel is not flipped)",
        shapes=[[(2, 3, 5, 5), (4, 3, 3, 3), (4,)]], kwargs={"stride": 1, "padding": 0})


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


# a max's kink is a tie between two entries of a window, not a value: entries pairwise apart
declare(MaxPool2D, ("x",), "window_max(x, size, stride)",
        "v[n, c, i, j] = max of the (size, size) window of x at (i*s, j*s); x_bar: v_bar to each window's maximum only",
        shapes=[[(2, 3, 4, 4)]], kwargs={"size": 2, "stride": 2}, domain="distinct")


class Flatten(CompNode):
    """Each example's entries as one row: (N, ...) -> (N, prod(...)); x_bar = v_bar reshaped."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = self.x.value.reshape(len(self.x.value), -1)

    def backward(self):
        self.x.grad += self.grad.reshape(self.x.value.shape)


declare(Flatten, ("x",), "x.reshape(x.shape[0], -1)", "v = x reshaped to (N, prod of the other axes); x_bar = v_bar reshaped to x's shape",
        shapes=[[(2, 3, 4)]])
