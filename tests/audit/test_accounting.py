"""A bug is charged where points are lost: a 0-point diagnostic test that fails a mutant charges
nothing, so it is listed apart (``flagged_by_diagnostics``), never as a second charge.

tensor_edf's ``backward_mlp2`` is such a diagnostic: it runs the loop invariant through the
student's components and fails every ``Exp.backward`` mutant, for 0 points. The same course with
that test worth one point charges those mutants twice, and the audit says so.
"""
from __future__ import annotations

import re
import shutil

import pytest

from grader.audit.core import Options, audit
from grader.audit.report import matrix
from grader.authoring.assignment import ASSIGNMENTS

OPTS = dict(n_sets=1, workers=2, only="Exp.backward", timeout=120, coverage=False, baselines=False)


def _course(tmp_path, points: int):
    root = tmp_path / "assignments"
    shutil.copytree(ASSIGNMENTS / "tensor_edf", root / "tensor_edf")
    suite = root / "tensor_edf" / "suite.toml"
    text, n = re.subn(r'(id = "backward_mlp2"\npoints = )0', rf"\g<1>{points}", suite.read_text())
    assert n == 1
    suite.write_text(text)
    return root


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return {p: audit("tensor_edf", Options(**OPTS), root=_course(tmp_path_factory.mktemp(f"p{p}"), p))
            for p in (0, 1)}


def test_a_zero_point_diagnostic_is_no_second_charge(reports):
    rows = reports[0]["mutants"]
    assert len(rows) >= 5 and all(r["verdict"] == "killed" for r in rows)
    flagged = [r for r in rows if "backward_mlp2" in r["flagged_by_diagnostics"]]
    assert len(flagged) == len(rows)  # the loop invariant does see every one of them...
    assert all(r["charged_elsewhere"] == [] for r in rows)  # ...and charges none of them
    assert all(r["scores"]["backward_mlp2"][0] < 1 for r in flagged)
    assert reports[0]["criteria"]["charged_once"]["detail"] == [r["id"] for r in rows
                                                                 if r.get("wrong_everywhere")
                                                                 and r["scores"]["exp"][0] > 0]
    assert "charged elsewhere: 0 " in matrix(reports[0], full=False)


def test_the_same_loss_on_a_test_with_points_is_a_second_charge(reports):
    rows = reports[1]["mutants"]
    assert {r["id"] for r in rows} == {r["id"] for r in reports[0]["mutants"]}
    assert all(r["charged_elsewhere"] == ["backward_mlp2"] and r["flagged_by_diagnostics"] == [] for r in rows)
    wrong = [r["id"] for r in rows if r.get("wrong_everywhere")]
    assert wrong and set(wrong) <= set(reports[1]["criteria"]["charged_once"]["detail"])
    assert f"charged elsewhere: {len(rows)} " in matrix(reports[1], full=False)
