"""The student bundle ``backprop_checks.py``: built from the kinds a suite uses, self-contained,
and the bundler refuses what could not run alone."""
from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest

import reference
from grader.authoring.tests import VISIBLE_CHECKS
from grader.checks import base, public as P
from grader.checks.bundle import BundleError, bundle, modules_for
from grader.checks.registry import kind_modules

from .conftest import suites

CHECKS = Path(P.__file__).resolve().parent


def load(text: str) -> dict:
    """Execute a bundle as the grading child does: a fresh module, not in sys.modules."""
    module = types.ModuleType("backprop_checks")
    exec(compile(text, "backprop_checks.py", "exec", dont_inherit=True), module.__dict__)
    return module.__dict__


def top_level(text: str) -> set[str]:
    tree = ast.parse(text)
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def test_every_suite_kind_and_visible_check_is_registered():
    registered = kind_modules()
    assert set(VISIBLE_CHECKS) <= set(registered)
    for tests in suites().values():
        assert {t["check"] for t in tests} <= set(registered)
    assert set(registered) == set(base.KINDS)


@pytest.mark.parametrize("assignment", sorted(suites()))
def test_an_assignment_bundle_has_its_kinds_and_nothing_else(assignment):
    kinds = {t["check"] for t in suites()[assignment]}
    text = bundle(kinds)
    ns = load(text)
    assert set(ns["KINDS"]) == kinds  # its kinds registered themselves, no other
    for kind, visible in VISIBLE_CHECKS.items():
        assert (visible.func in ns) == (kind in kinds), (kind, visible.func)
    assert "report" in ns and "run_public" in ns
    if "component" not in kinds and "backward_loop" not in kinds:  # forward_mode, mlp_training
        assert "FORMULAS" not in ns and "_probe_component" not in ns and "_probe_backward" not in ns
    probe = ns["probe"]
    other = next(k for k in kind_modules() if k not in kinds)
    assert probe(reference, {"check": other})["error"]["type"] == "protocol"


def test_a_bundle_judges_like_the_package():
    ns = load(bundle(["dual", "tape"]))
    for check in ("check_dual", "check_tape"):
        got, want = ns[check](reference, seed=4), getattr(P, check)(reference, seed=4)
        assert got.to_json() == want.to_json() and got.passed
    broken = {"Var": reference.Var, "exp": reference.exp, "log": reference.log, "sin": reference.sin,
              "cos": lambda x: reference.sin(x), "sigmoid": reference.sigmoid, "tanh": reference.tanh}
    got, want = ns["check_tape"](broken, seed=4), P.check_tape(broken, seed=4)
    assert not got.passed and got.to_json() == want.to_json()


def test_bundles_are_deterministic_and_ordered_by_dependency():
    assert bundle(["tape", "dual"]) == bundle(["dual", "tape"])
    order = modules_for(None)
    assert order[:2] == ["types", "base"] and set(order) >= set(kind_modules().values())
    for i, module in enumerate(order):  # every module after the modules it imports
        tree = ast.parse((CHECKS / f"{module}.py").read_text())
        deps = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.level}
        assert deps <= set(order[:i]), module
    assert "hidden" not in order and "registry" not in order and "public" not in order


def test_the_facade_exports_every_bundled_name():
    names = top_level(bundle())
    missing = sorted(n for n in names if not hasattr(P, n))
    assert not missing
    for name in ("describe", "RUNNER_OUTCOMES", "DIAGNOSES", "Result", "probe", "run_public"):
        assert hasattr(P, name)


def test_no_checks_module_is_long():
    long = {p.name: n for p in CHECKS.glob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


KIND = '''from .base import Kind, register


def _probe_{name}(ns, spec):
    return {{}}


register(Kind("{name}", probe=_probe_{name}, judge=None))
'''


def fake_checks(tmp_path: Path, **extra: str) -> Path:
    for shared in ("types", "base"):  # base imports types
        (tmp_path / f"{shared}.py").write_text((CHECKS / f"{shared}.py").read_text())
    (tmp_path / "alpha.py").write_text(KIND.format(name="alpha"))
    for name, text in extra.items():
        (tmp_path / f"{name}.py").write_text(text)
    return tmp_path


def test_a_new_kind_is_one_module(tmp_path):
    d = fake_checks(tmp_path, beta=KIND.format(name="beta"))
    assert kind_modules(d) == {"alpha": "alpha", "beta": "beta"}
    ns = load(bundle(["beta"], d))
    assert set(ns["KINDS"]) == {"beta"} and "_probe_alpha" not in ns
    assert ns["probe"]({}, {"check": "beta"}) == {}


@pytest.mark.parametrize("text, error", [
    ("import scipy\n" + KIND.format(name="beta"), "only the standard library and numpy"),
    ("from __future__ import annotations\n" + KIND.format(name="beta"), "__future__"),
    (KIND.format(name="beta") + "\ndef _probe_alpha():\n    pass\n", "also defined in"),
    ("from .gamma import x\n" + KIND.format(name="beta"), "not found"),
    ("from ..grader import x\n" + KIND.format(name="beta"), "only `from .<module> import"),
])
def test_the_bundler_refuses_what_cannot_run_alone(tmp_path, text, error):
    d = fake_checks(tmp_path, beta=text)
    with pytest.raises(BundleError, match=error):
        bundle(["alpha", "beta"], d)


def test_unknown_kinds_and_cycles_are_errors(tmp_path):
    with pytest.raises(BundleError, match="no check kind 'nope'"):
        bundle(["nope"])
    d = fake_checks(tmp_path, beta="from .gamma import g\n" + KIND.format(name="beta"),
                    gamma="from .beta import _probe_beta\n\n\ndef g():\n    pass\n")
    with pytest.raises(BundleError, match="cycle"):
        bundle(["beta"], d)


@pytest.mark.parametrize("assignment", ["forward_mode", "tensor_edf"])
def test_grading_sends_the_bundle_generate_ships(assignment):
    from grader.authoring.course import assignment_kinds, checks_module_text
    from grader.grading.context import load_context
    source = load_context(assignment).checks.public_source
    assert source == bundle(assignment_kinds(assignment))
    assert checks_module_text(assignment_kinds(assignment)).endswith(source)
    assert ("def check_component" in source) == (assignment == "tensor_edf")


@pytest.mark.parametrize("assignment", ["scalar_backprop", "forward_mode"])
def test_the_child_gets_the_probes_only_and_they_record_as_the_package_does(assignment):
    from grader.checks import hidden
    from grader.grading.execute import MODULE_PRELUDE, child_checks_source
    tests = suites()[assignment]
    source = child_checks_source(bundle({t["check"] for t in tests}))
    assert MODULE_PRELUDE in source
    assert "def judge_" not in source and "def numeric_" not in source  # judges stay in the parent
    ns = load(source)
    for test in tests:
        for spec in hidden.build_specs(test)[:3]:
            got, want = ns["probe"](reference, spec), P.probe(reference, spec)
            assert hidden.judge(test, [spec], [got]).to_json() == hidden.judge(test, [spec], [want]).to_json()
            assert hidden.judge(test, [spec], [got]).passed
