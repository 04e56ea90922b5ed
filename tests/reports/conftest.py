import pytest

from .fixtures import build_records, make_grades


@pytest.fixture(scope="session")
def records():
    return build_records()


@pytest.fixture(scope="session")
def by_student(records):
    return {r["student"]: r for r in records}


@pytest.fixture(scope="session")
def grades(tmp_path_factory):
    """A fixture grading output folder with feedback and the class report written."""
    from grader.reports.cli import write_reports

    root = make_grades(tmp_path_factory.mktemp("grades") / "tensor_edf")
    write_reports(root)
    return root
