"""A generated course (``backprop generate tensor_edf``) shared by the grading tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from grader.grading import sample

ASSIGNMENT = "tensor_edf"


def _generate(course: Path) -> None:
    from grader.authoring import assignment
    from grader.authoring.course import generate
    from grader.authoring.template import TemplateError

    try:
        generate([ASSIGNMENT], course)
    except TemplateError as e:
        if "needs report" not in str(e):
            raise
        # The authoring room renders visible tests with `report` from the public checks,
        # which has not landed in grader/checks/public.py yet; grading never runs test
        # cells, so render them anyway.
        orig = assignment._public_names
        assignment._public_names = lambda: orig() | {"report"}
        try:
            generate([ASSIGNMENT], course)
        finally:
            assignment._public_names = orig


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("grading") / "course"
    _generate(course)
    return course


@pytest.fixture(scope="session")
def submitted_nb(course) -> dict:
    """The source notebook as a student hands it in (full marks)."""
    return sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
