"""The EDF components: each is a constructor, a ``forward`` and a ``backward``.

``forward`` reads the operands' values and sets ``self.value``.
``backward`` adds ``self.grad`` (the upstream gradient d loss / d self) times the
local derivative into each operand's ``grad``, always with ``+=``.
Values are NumPy arrays with batch dimensions and broadcasting; a gradient always
has its value's shape (``unbroadcast`` sums broadcast axes back).
"""
from __future__ import annotations

import numpy as np

from .core import CompNode, unbroadcast


class Add(CompNode):
    """a + b, elementwise with broadcasting."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = self.a.value + self.b.value

    def backward(self):
        self.a.grad += unbroadcast(self.grad, self.a.value.shape)
        self.b.grad += unbroadcast(self.grad, self.b.value.shape)


class Mul(CompNode):
    """a * b, elementwise with broadcasting: a_bar = v_bar * b, b_bar = v_bar * a."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = self.a.value * self.b.value

    def backward(self):
        self.a.grad += unbroadcast(self.grad * self.b.value, self.a.value.shape)
        self.b.grad += unbroadcast(self.grad * self.a.value, self.b.value.shape)


class Square(CompNode):
    """x ** 2: x_bar = v_bar * 2x."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = self.x.value ** 2

    def backward(self):
        self.x.grad += self.grad * 2 * self.x.value


class Exp(CompNode):
    """exp(x): x_bar = v_bar * exp(x)."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.exp(self.x.value)

    def backward(self):
        self.x.grad += self.grad * self.value


class Log(CompNode):
    """log(x) for x > 0: x_bar = v_bar / x."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.log(self.x.value)

    def backward(self):
        self.x.grad += self.grad / self.x.value


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(CompNode):
    """sigma(x): x_bar = v_bar * sigma(x) * (1 - sigma(x))."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = sigmoid(self.x.value)

    def backward(self):
        self.x.grad += self.grad * self.value * (1 - self.value)


class Tanh(CompNode):
    """tanh(x): x_bar = v_bar * (1 - tanh(x)^2)."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.tanh(self.x.value)

    def backward(self):
        self.x.grad += self.grad * (1 - self.value ** 2)


class ReLU(CompNode):
    """max(0, x): x_bar = v_bar where x > 0, else 0."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.maximum(self.x.value, 0)

    def backward(self):
        self.x.grad += self.grad * (self.x.value > 0)


class VDot(CompNode):
    """x @ W for x of shape (..., I) and W of shape (I, O).

    The Jacobian contractions: x_bar = v_bar @ W^T, W_bar = x^T @ v_bar
    (summed over every batch row).
    """

    def __init__(self, x, W):
        super().__init__()
        self.x, self.W = x, W

    def forward(self):
        self.value = self.x.value @ self.W.value

    def backward(self):
        I, O = self.W.value.shape
        self.x.grad += self.grad @ self.W.value.T
        self.W.grad += self.x.value.reshape(-1, I).T @ self.grad.reshape(-1, O)


class Sum(CompNode):
    """The sum of all elements (0-d): x_bar = v_bar everywhere."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.asarray(np.sum(self.x.value))

    def backward(self):
        self.x.grad += self.grad


class Mean(CompNode):
    """The mean of all elements (0-d): x_bar = v_bar / size(x)."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.asarray(np.mean(self.x.value))

    def backward(self):
        self.x.grad += self.grad / self.x.value.size


class SoftmaxCrossEntropy(CompNode):
    """Mean over the batch of -log softmax(logits)[label], 0-d.

    With p = softmax(logits): logits_bar = v_bar * (p - onehot(labels)) / N.
    Stable for large logits: the row maximum is subtracted before exp.
    ``labels`` is an Input of integer classes; it receives no gradient.
    """

    def __init__(self, logits, labels):
        super().__init__()
        self.logits, self.labels = logits, labels

    def forward(self):
        z = self.logits.value - self.logits.value.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        rows = np.arange(len(z))
        self.p = np.exp(log_p)
        self.value = np.asarray(-log_p[rows, self.labels.value.astype(int)].mean())

    def backward(self):
        n = len(self.p)
        delta = self.p.copy()
        delta[np.arange(n), self.labels.value.astype(int)] -= 1
        self.logits.grad += self.grad * delta / n


class MSE(CompNode):
    """0.5 * mean((y - t)^2), 0-d: y_bar = v_bar * (y - t) / size, t_bar = -y_bar."""

    def __init__(self, y, t):
        super().__init__()
        self.y, self.t = y, t

    def forward(self):
        self.value = np.asarray(0.5 * np.mean((self.y.value - self.t.value) ** 2))

    def backward(self):
        diff = self.y.value - self.t.value
        g = self.grad * diff / diff.size
        self.y.grad += unbroadcast(g, self.y.value.shape)
        self.t.grad -= unbroadcast(g, self.t.value.shape)
