"""Authoring: assignment templates -> nbgrader source notebooks -> student release.

``load_assignment`` / ``source_cells`` give the grader the trusted view of an
assignment; ``generate`` is ``backprop generate``. The generation pipeline
(``course``) imports nbformat, whose validator alone takes over a second to import,
so it is loaded only when one of its names is first used (``backprop grade`` and
the CLI's start-up never need it).
"""
from .assignment import Assignment, Cell, discover, load_assignment, source_cells
from .template import SuiteTest, TemplateError

_COURSE_NAMES = ("STEPS", "Build", "generate")

__all__ = ["Assignment", "Cell", "SuiteTest", "TemplateError", *_COURSE_NAMES,
           "discover", "load_assignment", "source_cells"]


def __getattr__(name):
    if name in _COURSE_NAMES:
        from . import course
        return getattr(course, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
