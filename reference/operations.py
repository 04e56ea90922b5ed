"""The EDF components: each is a constructor, a ``forward`` and a ``backward``.

``forward`` reads the operands' values and sets ``self.value``.
``backward`` adds ``self.grad`` (the upstream gradient d loss / d self) times the
local derivative into each operand's ``grad``, always with ``+=``.
Values are NumPy arrays with batch dimensions and broadcasting; a gradient always
has its value's shape (``unbroadcast`` sums broadcast axes back).
"""
from __future__ import annotations

import numpy as np

from .contract import declare
from .core import CompNode, unbroadcast

# Operands drawn from both sides of 0 with magnitude at least 0.3 unless a class declares
# a domain; 'regions' are one interval per branch regime, 'kinks' the points they avoid.


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


declare(Add, ("a", "b"), "a + b", "v = a + b (with broadcasting); a_bar = v_bar, b_bar = v_bar, each summed over its broadcast axes",
        shapes=[[(4, 3), (4, 3)], [(4, 3), (3,)]], elementwise=True)


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


declare(Mul, ("a", "b"), "a * b", "v = a * b (with broadcasting); a_bar = v_bar * b, b_bar = v_bar * a, each summed over its broadcast axes",
        shapes=[[(4, 3), (4, 3)], [(4, 3), (3,)]], elementwise=True)


class Square(CompNode):
    """x ** 2: x_bar = v_bar * 2x."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = self.x.value ** 2

    def backward(self):
        self.x.grad += self.grad * 2 * self.x.value


declare(Square, ("x",), "x * x", "v = x^2; x_bar = v_bar * 2x", elementwise=True)


class Exp(CompNode):
    """exp(x): x_bar = v_bar * exp(x)."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.exp(self.x.value)

    def backward(self):
        self.x.grad += self.grad * self.value


declare(Exp, ("x",), "np.exp(x)", "v = exp(x); x_bar = v_bar * exp(x)", elementwise=True,
        graph_inputs="np.max(x) < 2.5")


class Log(CompNode):
    """log(x) for x > 0: x_bar = v_bar / x."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.log(self.x.value)

    def backward(self):
        self.x.grad += self.grad / self.x.value


declare(Log, ("x",), "np.log(x)", "v = log(x) for x > 0; x_bar = v_bar / x",
        domain={"kinks": (0.0,), "regions": {"x > 0": (0.3, 3.0)}}, elementwise=True,
        graph_inputs="np.min(x) > 0.2",
        large_inputs=(1e300, 1e-300, 7.0, 1e5))


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


declare(Sigmoid, ("x",), "sigmoid(x)", "v = sigma(x) = 1 / (1 + exp(-x)); x_bar = v_bar * sigma(x) * (1 - sigma(x))",
        domain={"kinks": (0.0,), "regions": {"lower tail": (-5.0, -2.5), "middle, x < 0": (-1.2, -0.25),
                                            "middle, x > 0": (0.25, 1.2), "upper tail": (2.5, 5.0)}},
        elementwise=True, large_inputs=(-1000.0, 1000.0, -50.0, 50.0, 0.3, -0.3, -3.0))


class Tanh(CompNode):
    """tanh(x): x_bar = v_bar * (1 - tanh(x)^2)."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.tanh(self.x.value)

    def backward(self):
        self.x.grad += self.grad * (1 - self.value ** 2)


declare(Tanh, ("x",), "np.tanh(x)", "v = tanh(x); x_bar = v_bar * (1 - tanh(x)^2)",
        domain={"kinks": (), "regions": {"lower tail": (-3.0, -1.5), "middle, x < 0": (-1.0, -0.25),
                                         "middle, x > 0": (0.25, 1.0), "upper tail": (1.5, 3.0)}},
        elementwise=True, large_inputs=(-1000.0, 1000.0, -50.0, 50.0, 0.3, -0.3, -3.0))


class ReLU(CompNode):
    """max(0, x): x_bar = v_bar where x > 0, else 0."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.maximum(self.x.value, 0)

    def backward(self):
        self.x.grad += self.grad * (self.x.value > 0)


declare(ReLU, ("x",), "np.maximum(x, 0.0)", "v = max(0, x); x_bar = v_bar where x > 0, else 0",
        # both sides of the kink, near it and far from it (a kink misplaced at +-1 shows too)
        domain={"kinks": (0.0,), "regions": {"x < -1": (-2.5, -1.1), "-1 < x < 0": (-0.9, -0.1),
                                             "0 < x < 1": (0.1, 0.9), "x > 1": (1.1, 2.5)}},
        elementwise=True, graph_inputs="np.min(np.abs(x)) > 0.05")


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


declare(VDot, ("x", "W"), "x @ W", "v = x @ W; x_bar = v_bar @ W^T, W_bar = x^T @ v_bar (summed over the batch)",
        shapes=[[(4, 3), (3, 5)], [(3,), (3, 5)], [(4, 4), (4, 4)]])


class Sum(CompNode):
    """The sum of all elements (0-d): x_bar = v_bar everywhere."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.asarray(np.sum(self.x.value))

    def backward(self):
        self.x.grad += self.grad


declare(Sum, ("x",), "np.sum(x)", "v = sum of all elements of x (0-d); x_bar = v_bar everywhere")


class Mean(CompNode):
    """The mean of all elements (0-d): x_bar = v_bar / size(x)."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.asarray(np.mean(self.x.value))

    def backward(self):
        self.x.grad += self.grad / self.x.value.size


declare(Mean, ("x",), "np.mean(x)", "v = mean of all elements of x (0-d); x_bar = v_bar / size(x)")


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


declare(SoftmaxCrossEntropy, ("logits", "labels"), "np.mean(logsumexp(logits) - pick(logits, labels))",
        "v = mean over the batch of -log softmax(logits)[label]; logits_bar = v_bar * (softmax(logits) - onehot(labels)) / N",
        shapes=[[(4, 3), (4,)]], labels=("labels",),
        large_inputs={"logits": [[-1000.0, 1000.0, 0.0], [1000.0, -1000.0, 999.0], [3.0, -1000.0, 1000.0]],
                      "labels": [0, 1, 1]})


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


declare(MSE, ("y", "t"), "0.5 * np.mean((y - t) ** 2)", "v = 0.5 * mean((y - t)^2); y_bar = v_bar * (y - t) / size, t_bar = -y_bar",
        shapes=[[(4, 3), (4, 3)]])
