"""The rlimits-only fallback (no usable bubblewrap, e.g. a container without user namespaces):
as root it grades, with the standard library readable wherever the interpreter lives and the
reference, hidden suites, course and submissions unreadable; where it cannot keep those from
the children (an ordinary user, a file system without ACLs) it refuses at start, saying why."""

from __future__ import annotations

import json
import os
import stat

import pytest

from grader.runner import ChildPool, IsolationError, Limits
from grader.runner.sandbox import default_private_paths

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="the fallback grades only as root (it refuses as an ordinary user)")
LIMITS = Limits(timeout=10.0)
PROBE = "def get(ns, name):\n    return ns.get(name)\n"

READ = """
import os
found = {}
for p in %r:
    try:
        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(1)
        found[p] = 'READ'
    except OSError as exc:
        found[p] = type(exc).__name__
"""


@pytest.fixture
def world_readable_course(tmp_path):
    """A course directory anyone could read by its mode bits (as in a container's /autograder)."""
    course = tmp_path / "course"
    (course / "submitted" / "bob").mkdir(parents=True)
    secret = course / "submitted" / "bob" / "tensor_edf.ipynb"
    secret.write_text("{}")
    for p in (tmp_path, course, course / "submitted", course / "submitted" / "bob"):
        p.chmod(0o755)
    secret.chmod(0o644)
    return course, secret


@needs_root
def test_fallback_children_cannot_read_the_reference_suites_or_course(world_readable_course):
    course, secret = world_readable_course
    private = default_private_paths()
    if len(private) == 1:  # a checkout: all of it
        private = [os.path.join(private[0], n) for n in ("reference", "assignments", "grader/checks/hidden.py", "tests")]
    with ChildPool(workers=1, limits=LIMITS, isolation="rlimits-only", private=[course]) as pool:
        assert pool.isolation == "rlimits-only"
        with pool.session() as s:
            assert s.load_module("probe", PROBE).ok
            paths = private + [str(course), str(secret)] + [os.path.join(p, n) for p in private if os.path.isdir(p) for n in os.listdir(p)][:20]
            [cell] = s.exec_cells([{"id": "read", "source": READ % (paths,)}])
            assert cell.status == "ok", cell.error
            found = s.call("probe", "get", "found").value
    assert found and all(v == "PermissionError" for v in found.values()), found
    assert stat.S_IMODE(secret.stat().st_mode) == 0o644  # protected by the ACL, its mode untouched


@needs_root
def test_fallback_children_import_the_standard_library_wherever_it_lives():
    # the reported bug: under /root/.pyenv the sandbox uid could not read the stdlib (0/10)
    with ChildPool(workers=1, limits=LIMITS, isolation="rlimits-only") as pool, pool.session() as s:
        source = ("import uuid, secrets, decimal, fractions, statistics, json, tempfile, encodings.idna, sys\n"
                  "token = secrets.token_hex(4)\nd = str(decimal.Decimal(1) / 8)\nuid = __import__('os').getuid()")
        [cell] = s.exec_cells([{"id": "imports", "source": source}])
        assert cell.status == "ok", cell.error
        assert s.load_module("probe", PROBE).ok
        assert s.call("probe", "get", "d").value == "0.125"
        assert s.call("probe", "get", "uid").value != 0


def test_fallback_refuses_what_it_cannot_protect():
    """As an ordinary user every child runs as the grading user: nothing can be protected.
    As root, a private path on a file system without ACLs (here /proc) cannot be denied."""
    private = [] if not ROOT else ["/proc/version"]
    with pytest.raises(IsolationError) as refused:
        ChildPool(workers=1, limits=LIMITS, isolation="rlimits-only", private=private)
    message = str(refused.value)
    assert "refuses to grade" in message and "rlimits-only" in message
    expected = "/proc/version" if ROOT else default_private_paths()[0]
    assert f"a child can read {expected}" in message, message


@needs_root
def test_a_correct_mlp_training_notebook_earns_full_marks_in_the_fallback(tmp_path):
    """End to end through ``backprop grade``'s batch: the notebook of the bug report."""
    from grader.authoring.course import generate
    from grader.grading import sample
    from grader.grading.batch import Request, grade

    course = tmp_path / "course"
    generate(["mlp_training"], course)
    notebook = sample.as_submitted(sample.source_notebook(course, "mlp_training"))
    folder = tmp_path / "submitted" / "alice" / "mlp_training"
    folder.mkdir(parents=True)
    (folder / "mlp_training.ipynb").write_text(json.dumps(notebook))
    summary = grade(Request(path=tmp_path / "submitted", assignment="mlp_training", course=course,
                            isolation="rlimits-only", nbgrader=False, reports=False, workers=1))
    assert summary["isolation"] == "rlimits-only" and summary["isolation_warning"]
    assert summary["mean"] == summary["max_points"] > 0, summary
