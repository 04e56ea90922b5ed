"""A generated course (``backprop generate tensor_edf``, nbgrader gradebook.db included) for the
export tests, and real notebooks as a student hands them in."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.grading import sample

ASSIGNMENT = "tensor_edf"


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> Path:
    from grader.authoring.course import generate

    course = tmp_path_factory.mktemp("export") / "course"
    generate([ASSIGNMENT], course)
    return course


@pytest.fixture(scope="session")
def nbs(course) -> dict[str, bytes]:
    """Full marks, two different bugs."""
    nb = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))
    buggy = sample.CORPUS / "buggy"

    def dump(nb):
        return (json.dumps(nb, indent=1, sort_keys=True) + "\n").encode()

    return {"correct": dump(nb),
            "sigmoid_bug": dump(sample.with_variant(nb, buggy / "sigmoid_upstream_ignored.py")),
            "exp_bug": dump(sample.with_variant(nb, buggy / "exp_assign.py"))}
