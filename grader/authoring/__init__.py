"""Authoring: assignment templates -> nbgrader source notebooks -> student release.

``load_assignment`` / ``source_cells`` give the grader the trusted view of an
assignment; ``generate`` is ``backprop generate``.
"""
from .assignment import Assignment, Cell, discover, load_assignment, source_cells
from .course import STEPS, Build, generate
from .template import SuiteTest, TemplateError

__all__ = ["Assignment", "Cell", "SuiteTest", "TemplateError", "Build", "STEPS",
           "discover", "load_assignment", "source_cells", "generate"]
