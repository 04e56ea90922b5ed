"""Grading checks: the self-contained public core and the trusted hidden part.

``public`` (stdlib + NumPy only) is what students get as ``backprop_checks.py``;
``hidden`` compares with the reference and is imported lazily (it imports ``reference``).
"""
from .public import (DIAGNOSES, Result, check_backward, check_component, judge_backward,
                     judge_component, probe)

__all__ = ["DIAGNOSES", "Result", "probe", "judge_component", "judge_backward",
           "check_component", "check_backward"]
