"""Grading checks: one module per check kind, shared modules, and the trusted hidden part.

The child-safe modules (stdlib + NumPy only) are bundled into ``backprop_checks.py`` for
each assignment from the kinds its suite uses (``bundle.py``); ``registry`` maps kind
names to modules; ``public`` re-exports every child-safe name; ``hidden`` compares with
the reference and is imported lazily (it imports ``reference``).
"""
from . import registry  # noqa: F401  (imports every kind module, which registers itself)
from .backward_loop import check_backward
from .base import DIAGNOSES, Result, probe, report, run_public
from .backward_judge import judge_backward
from .component import check_component, judge_component
from .dual import check_dual
from .function import check_function
from .mlp import check_mlp_accuracy
from .tape import check_tape

__all__ = ["DIAGNOSES", "Result", "probe", "judge_component", "judge_backward", "report", "run_public",
           "check_component", "check_backward", "check_function", "check_dual", "check_tape",
           "check_mlp_accuracy"]
