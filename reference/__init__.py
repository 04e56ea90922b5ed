"""The reference implementation of backprop-course: the course's solution code.

This package is the single source of truth: assignment templates pull their
solutions from it by name and the grader compares student work against it.
It is never shipped to students.
"""
from .core import (CompNode, Backward, Forward, Input, Parameter, SGD, clear_compgraph,
                   components, inputs, params, unbroadcast)
from .operations import (Add, Exp, Log, Mean, MSE, Mul, ReLU, Sigmoid, SoftmaxCrossEntropy,
                         Square, Sum, Tanh, VDot)
from .forward_mode import Dual, cos, derivative, exp, gradient_fwd, log, sigmoid, sin, tanh
from .tape import Var, gradient_rev
from .by_hand import logistic_ls_grads
from .conv import Conv2D, Flatten, MaxPool2D

__all__ = [
    "components", "params", "inputs", "clear_compgraph", "Input", "Parameter", "CompNode",
    "Forward", "Backward", "SGD", "unbroadcast",
    "Add", "Mul", "Square", "Exp", "Log", "Sigmoid", "Tanh", "ReLU", "VDot", "Sum", "Mean",
    "SoftmaxCrossEntropy", "MSE",
    "Dual", "exp", "log", "sin", "cos", "sigmoid", "tanh", "derivative", "gradient_fwd",
    "Var", "gradient_rev", "logistic_ls_grads",
    "Conv2D", "MaxPool2D", "Flatten",
]
