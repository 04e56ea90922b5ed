"""``make test`` audits every assignment: each one's hidden suite kills every non-equivalent
mutant on its own test under three seed sets, covers every branch, gives the lazy baselines
nothing, charges every bug once and leaks no later solution (``backprop audit``; one test per assignment, so each
fails on its own). These are the slowest tests of the repository: minutes each."""
from __future__ import annotations

import pytest

from grader.audit.core import Options
from grader.audit.gate import audit_one, failures
from grader.authoring.assignment import discover


# mlp_training is audited with its training cells for every mutant (``--full``), so that a bug
# of build_mlp, train_step or train is seen not to cost accuracy points too (charged once);
# conv_edf's full audit takes minutes more, its learning case is checked in tests/grading.
FULL = {"mlp_training"}


@pytest.mark.parametrize("name", discover())
def test_the_audit_passes(name):
    report = audit_one(name, Options(n_sets=3, workers=2, full=name in FULL))
    assert report["reference"]["status"] == "ok"
    assert report["mutants"], name  # an audit with nothing to mutate proves nothing
    assert report["ok"], f"backprop audit {name} fails:\n" + "\n".join(failures(report))
