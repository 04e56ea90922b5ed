"""A generated course (``backprop generate tensor_edf``) shared by the grading tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from grader.grading import sample

ASSIGNMENT = "tensor_edf"


def _generate(course: Path) -> None:
    from grader.authoring.course import generate

    generate([ASSIGNMENT], course)


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("grading") / "course"
    _generate(course)
    return course


@pytest.fixture(scope="session")
def submitted_nb(course) -> dict:
    """The source notebook as a student hands it in (full marks)."""
    return sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
