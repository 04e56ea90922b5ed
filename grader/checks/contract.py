"""The component contract: each graded component class's operands and its forward formula
as stated in the course notes. Numeric expectations (component checks, graphs) come from
these formulas, never from solution code.
"""
import numpy as np


OPERANDS = {
    "Add": ("a", "b"), "Mul": ("a", "b"), "Square": ("x",), "Exp": ("x",), "Log": ("x",),
    "Sigmoid": ("x",), "Tanh": ("x",), "ReLU": ("x",), "VDot": ("x", "W"), "Sum": ("x",),
    "Mean": ("x",), "SoftmaxCrossEntropy": ("logits", "labels"), "MSE": ("y", "t"),
}


ELEMENTWISE = ("Add", "Mul", "Square", "Exp", "Log", "Sigmoid", "Tanh", "ReLU")


def _sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * np.asarray(x, dtype=float))  # saturates, never overflows


def _softmax_ce(logits, labels):
    rows = np.arange(logits.shape[0])
    return np.asarray(np.mean(np.logaddexp.reduce(logits, axis=-1) - logits[rows, labels.astype(int)]))


FORMULAS = {  # the forward values stated in DESIGN.md
    "Add": lambda a, b: a + b, "Mul": lambda a, b: a * b, "Square": lambda x: x * x,
    "Exp": np.exp, "Log": np.log, "Sigmoid": _sigmoid, "Tanh": np.tanh,
    "ReLU": lambda x: np.maximum(x, 0.0), "VDot": lambda x, W: x @ W,
    "Sum": lambda x: np.asarray(np.sum(x)), "Mean": lambda x: np.asarray(np.mean(x)),
    "SoftmaxCrossEntropy": _softmax_ce, "MSE": lambda y, t: np.asarray(0.5 * np.mean((y - t) ** 2)),
}


ALL_CLASSES = tuple(OPERANDS)
