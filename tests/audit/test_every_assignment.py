"""``make test`` audits every assignment: each one's hidden suite kills every non-equivalent
mutant on its own test under three seed sets, covers every branch, gives the lazy baselines
nothing and leaks no later solution (``backprop audit``; one test per assignment, so each
fails on its own). These are the slowest tests of the repository: minutes each."""
from __future__ import annotations

import pytest

from grader.audit.core import Options
from grader.audit.gate import audit_one, failures
from grader.authoring.assignment import discover


@pytest.mark.parametrize("name", discover())
def test_the_audit_passes(name):
    report = audit_one(name, Options(n_sets=3, workers=2))
    assert report["reference"]["status"] == "ok"
    assert report["mutants"], name  # an audit with nothing to mutate proves nothing
    assert report["ok"], f"backprop audit {name} fails:\n" + "\n".join(failures(report))
