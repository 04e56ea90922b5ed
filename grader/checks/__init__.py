"""Grading checks: the self-contained public core and the trusted hidden part.

``public`` (stdlib + NumPy only) is what students get as ``backprop_checks.py``;
``hidden`` compares with the reference and is imported lazily (it imports ``reference``).
"""
from .public import (DIAGNOSES, Result, check_backward, check_component, check_dual, check_function,
                     check_mlp_accuracy, check_tape, judge_backward, judge_component, probe, report,
                     run_public)

__all__ = ["DIAGNOSES", "Result", "probe", "judge_component", "judge_backward", "report", "run_public",
           "check_component", "check_backward", "check_function", "check_dual", "check_tape",
           "check_mlp_accuracy"]
