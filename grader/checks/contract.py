"""The component contract: each graded component class's operands and its forward formula
as stated in the course notes. Numeric expectations (component checks, graphs) come from
these formulas, never from solution code.
"""
import numpy as np

from .conv_contract import CONV_FORMULAS, CONV_OPERANDS


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


OPERANDS.update(CONV_OPERANDS)
FORMULAS.update(CONV_FORMULAS)


ALL_CLASSES = tuple(OPERANDS)


# The input domain of each component, as data: ``regions`` are the intervals its operand
# values are drawn from, one per branch regime of the unit (both sides of a kink, both
# tails and the middle of a saturating function), each a margin away from kinks and from
# zero so that no gradient is tiny. ``kinks`` are the points the regions keep away from.
# Every case holds every region: an array case spreads its elements over the regions
# (balanced, in random positions); an operand with fewer elements than regions (0-d) is
# judged on one instance per region, and the case passes only if all of them do.
# Classes absent here (no branch: Conv2D and Flatten among them) draw each element from a
# random one of DEFAULT_REGIONS.
DOMAINS = {
    # both sides of the kink, near it and far from it (a kink misplaced at +-1 shows too)
    "ReLU": {"kinks": (0.0,), "regions": {"x < -1": (-2.5, -1.1), "-1 < x < 0": (-0.9, -0.1),
                                          "0 < x < 1": (0.1, 0.9), "x > 1": (1.1, 2.5)}},
    "Sigmoid": {"kinks": (0.0,), "regions": {"lower tail": (-5.0, -2.5), "middle, x < 0": (-1.2, -0.25),
                                         "middle, x > 0": (0.25, 1.2), "upper tail": (2.5, 5.0)}},
    "Tanh": {"kinks": (), "regions": {"lower tail": (-3.0, -1.5), "middle, x < 0": (-1.0, -0.25),
                                      "middle, x > 0": (0.25, 1.0), "upper tail": (1.5, 3.0)}},
    "Log": {"kinks": (0.0,), "regions": {"x > 0": (0.3, 3.0)}},
    # a max's kink is a tie between two entries of a window, not a value: the entries are
    # drawn pairwise apart (``conv_contract.sample_distinct``) instead of from regions
    "MaxPool2D": {"kinks": (), "domain": "distinct"},
}


# Operands of the other classes: either sign, magnitude at least 0.3 (never a vanishing
# factor of a product or gradient).
DEFAULT_REGIONS = {"x < 0": (-2.0, -0.3), "x > 0": (0.3, 2.0)}
