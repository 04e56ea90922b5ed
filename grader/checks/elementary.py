"""The elementary functions of the forward-mode and tape assignments (exp, log, sin, cos,
sigmoid, tanh): the exact ``math`` versions for expectations, the student's versions for
probes, and suite test functions given as lambda source text.
"""
import math
from collections.abc import Callable
from typing import Any

from .base import _get


FUNCTION_NAMES = ("exp", "log", "sin", "cos", "sigmoid", "tanh")


def _math_sigmoid(x: float) -> float:
    return 0.5 + 0.5 * math.tanh(0.5 * x)


MATH_FUNCTIONS = {"exp": math.exp, "log": math.log, "sin": math.sin, "cos": math.cos,
                  "sigmoid": _math_sigmoid, "tanh": math.tanh}


def _lambda(src: str, env: dict) -> Callable:
    """A test function from the suite's source text, with ``env``'s elementary functions in scope."""
    if not (isinstance(src, str) and src.lstrip().startswith("lambda")):
        raise ValueError("a test function must be a lambda expression")
    return eval(src, {"__builtins__": {}, **env})


def _env(ns: Any) -> dict:
    return {k: _get(ns, k) for k in FUNCTION_NAMES if _get(ns, k) is not None}
