"""The audit fails a deliberately weakened suite, naming the survivor; it passes the same unit
under a suite whose cases straddle the kink.

The weakened suite is tensor_edf's with one change: the ``relu`` test's hidden cases are all
negative (``domain = "positive"`` scaled by -1), so a ReLU whose backward does nothing, or
whose forward returns zeros, gets full marks. The strong suite draws the relu cases on both
sides of the kink. Only the ReLU units are mutated (``only``), to keep the test short.
"""
from __future__ import annotations

import re
import shutil

import pytest

from grader.audit.core import Options, audit
from grader.audit.report import matrix
from grader.authoring.assignment import ASSIGNMENTS

RELU_BLOCK = re.compile(r'(\[\[test\]\]\nid = "relu"\n.*?)(?=\n\[\[test\]\])', re.S)

WEAK = '''[[test]]
id = "relu"
points = 1
check = "component"
target = "ReLU"
[test.visible]
seed = 0
shapes = [[[4, 3]]]
[test.hidden]
seeds = [1237]
shapes = [[[7, 5]], [[6]]]
domain = "positive"
scales = [-1.0, -1.0]
'''

STRONG = '''[[test]]
id = "relu"
points = 1
check = "component"
target = "ReLU"
[test.visible]
seed = 0
shapes = [[[4, 3]]]
[test.hidden]
seeds = [1237, 5591]
shapes = [[[7, 5]], [[6]], [[2, 3, 4]]]
domain = "nonzero"
'''


def _course(tmp_path, relu_block):
    root = tmp_path / "assignments"
    (root / "tensor_edf").mkdir(parents=True)
    shutil.copy(ASSIGNMENTS / "tensor_edf" / "tensor_edf.py", root / "tensor_edf" / "tensor_edf.py")
    suite = (ASSIGNMENTS / "tensor_edf" / "suite.toml").read_text()
    new, n = RELU_BLOCK.subn(relu_block.rstrip("\n"), suite)
    assert n == 1
    (root / "tensor_edf" / "suite.toml").write_text(new)
    return root


@pytest.fixture(scope="module")
def weak(tmp_path_factory):
    root = _course(tmp_path_factory.mktemp("weak"), WEAK)
    return audit("tensor_edf", Options(n_sets=2, workers=2, only="ReLU", timeout=120), root=root)


@pytest.fixture(scope="module")
def strong(tmp_path_factory):
    root = _course(tmp_path_factory.mktemp("strong"), STRONG)
    return audit("tensor_edf", Options(n_sets=2, workers=2, only="ReLU", timeout=120), root=root)


def _mutant(report, prefix):
    return next(m for m in report["mutants"] if m["id"].startswith(prefix))


def test_weak_suite_fails_the_audit_naming_the_survivor(weak):
    assert not weak["ok"]
    crit = weak["criteria"]["mutants_killed_on_own_test"]
    assert not crit["ok"] and crit["enforced"]
    noop = _mutant(weak, "ReLU.backward:noop@")
    assert noop["verdict"] == "survivor"
    assert noop["id"] in crit["detail"]
    assert noop["scores"]["relu"] == [1.0, 1.0]
    assert noop["domain"]["differ"] > 0  # not equivalent: wrong wherever the input is positive
    zeros = _mutant(weak, "ReLU.forward:return_zeros@")
    assert zeros["verdict"] == "survivor"
    text = matrix(weak)
    survivors = text.split("-- survivors")[1].split("\n\n")[0]
    assert noop["id"] in survivors and zeros["id"] in survivors
    assert "AUDIT FAILED" in text


def test_weak_suite_gives_a_lazy_baseline_points(weak):
    by_name = {b["name"]: b for b in weak["baselines"]}
    assert "relu" in by_name["backward_noop"]["violations"]
    assert by_name["backward_noop"]["scores"]["relu"] == [1.0, 1.0]
    assert not weak["criteria"]["lazy_baselines_zero"]["ok"]
    assert by_name["stubs"]["violations"] == []


def test_weak_suite_has_a_kink_coverage_gap(weak):
    cov = {u["name"]: u for u in weak["coverage"]["units"]}
    assert cov["ReLU.backward"]["percent"] < 100
    assert any("sees only negative" in g for g in cov["ReLU.backward"]["gaps"])
    assert not weak["criteria"]["branch_coverage"]["ok"]


def test_strong_suite_kills_the_same_mutants_and_covers_the_kink(strong):
    for prefix in ("ReLU.backward:noop@", "ReLU.forward:return_zeros@"):
        m = _mutant(strong, prefix)
        assert m["verdict"] == "killed", m
        assert all(s < 1 for s in m["scores"]["relu"])
    by_name = {b["name"]: b for b in strong["baselines"]}
    assert "relu" not in by_name["backward_noop"]["violations"]
    cov = {u["name"]: u for u in strong["coverage"]["units"]}
    assert cov["ReLU.backward"]["gaps"] == [] and cov["ReLU.forward"]["gaps"] == []
    assert strong["criteria"]["reference_full_marks"]["ok"]


def test_cli_exits_nonzero_names_the_survivor_and_writes_json(tmp_path, capsys):
    import json

    from grader.cli import main

    root = _course(tmp_path, WEAK)
    out = tmp_path / "audit.json"
    code = main(["audit", "tensor_edf", "--root", str(root), "--only", "ReLU.backward", "--seed-sets", "1",
                 "--json", str(out)])
    assert code == 1
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    noop = next(m for m in report["mutants"] if m["id"].startswith("ReLU.backward:noop@"))
    assert noop["verdict"] == "survivor"
    assert noop["id"] in text.split("-- survivors")[1].split("\n\n")[0]
    assert "AUDIT FAILED" in text and report["ok"] is False
    assert {m["unit"] for m in report["mutants"]} == {"ReLU.backward"}


def test_the_gate_of_generate_refuses_the_weak_suite_naming_the_survivor(tmp_path):
    from grader.audit.gate import gate

    lines: list[str] = []
    assert not gate(["tensor_edf"], root=_course(tmp_path, WEAK), only="ReLU.backward", log=lines.append)
    assert lines[0].startswith("audit tensor_edf: FAILED")
    text = "\n".join(lines)
    assert "mutants_killed_on_own_test" in text and "ReLU.backward:noop@" in text
    assert "lazy_baselines_zero" in text
    lines.clear()
    assert gate(["tensor_edf"], root=_course(tmp_path / "strong", STRONG), only="ReLU.backward", log=lines.append)
    assert lines == [next(x for x in lines if x.startswith("audit tensor_edf: passed"))]


def test_a_reference_that_raises_fails_the_audit_with_its_error(tmp_path, capsys):
    """The instructor's reference notebook raising in a cell: nothing to audit against, said
    in one line by ``backprop audit`` and by the gate of ``generate`` (no traceback)."""
    from grader.audit.gate import gate
    from grader.cli import main

    root = _course(tmp_path, STRONG)
    template = root / "tensor_edf" / "tensor_edf.py"
    template.write_text(template.read_text() + '\n# %% [given] id=broken-cell\nraise ValueError("the reference is broken")\n')
    assert main(["audit", "tensor_edf", "--root", str(root), "--only", "ReLU.backward", "--seed-sets", "1"]) == 1
    err = capsys.readouterr().err
    assert "backprop audit tensor_edf: FAILED" in err and "the reference is broken" in err
    lines: list[str] = []
    assert not gate(["tensor_edf"], root=root, only="ReLU.backward", log=lines.append)
    assert lines[0].startswith("audit tensor_edf: FAILED") and "the reference is broken" in lines[0]
