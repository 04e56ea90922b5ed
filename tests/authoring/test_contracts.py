"""Component contracts are declared once, beside each class in reference/, and the grader
only reads them: every exported component is declared and consistent with its class, the
declared formula agrees with the reference's forward (two independent statements of the
same value), the student bundle carries the declarations as data and none of the
reference's code, and no component-contract table is left in grader/."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import reference
from grader.checks import contract
from grader.checks.bundle import bundle
from grader.checks.component import component_specs
from reference.contract import DECLARED, declared_data

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = [name for name in reference.__all__
              if inspect.isclass(getattr(reference, name)) and issubclass(getattr(reference, name), reference.CompNode)
              and getattr(reference, name) is not reference.CompNode]


def test_every_exported_component_is_declared_and_only_those():
    assert COMPONENTS and set(COMPONENTS) == set(DECLARED)
    assert contract.ALL_CLASSES == tuple(DECLARED)  # declaration order: the order checks draw graphs in


@pytest.mark.parametrize("name", COMPONENTS)
def test_the_declaration_matches_the_constructor(name):
    c = DECLARED[name]
    params = list(inspect.signature(getattr(reference, name).__init__).parameters.values())[1:]
    positional = tuple(p.name for p in params if p.default is inspect.Parameter.empty)
    keywords = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    assert c.operands == positional
    assert c.kwargs == keywords
    assert set(c.labels) <= set(c.operands)
    for hint in c.hints:
        assert hint.operand is None or hint.operand in c.operands
        compile(hint.evidence, name, "eval")


@pytest.mark.parametrize("name", COMPONENTS)
@pytest.mark.parametrize("seed", range(5))
def test_the_declared_formula_agrees_with_the_reference_forward(name, seed):
    cls = getattr(reference, name)
    for spec in component_specs(name, seed=seed):
        for part in spec.get("parts", [spec]):
            ops = [np.asarray(o) for o in part["operands"]]
            kw = dict(part.get("kwargs") or {})
            reference.clear_compgraph()
            leaves = [reference.Input(o) for o in ops]
            node = cls(*leaves, **kw)
            with np.errstate(all="ignore"):
                node.forward()
                want = contract.FORMULAS[name](*ops, **kw)
            np.testing.assert_allclose(node.value, want, rtol=1e-9, atol=1e-12)
    reference.clear_compgraph()


def test_the_bundle_holds_the_declarations_as_data_and_no_reference_code():
    text = bundle(["component", "backward_loop"])
    ns: dict = {}
    exec(compile(text, "backprop_checks.py", "exec"), ns)
    assert ns["DECLARED"] == declared_data()
    assert ns["FORMULAS"]["Sigmoid"](np.array([0.0, 1e4])).tolist() == [0.5, 1.0]
    tree = ast.parse(text)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | \
        {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "reference" not in imported and "grader" not in imported
    for module in (reference.operations, reference.conv):  # not one line of a component's methods
        for name in DECLARED:
            cls = getattr(module, name, None)
            if cls is None:
                continue
            for method in ("forward", "backward"):
                body = inspect.getsource(getattr(cls, method)).splitlines()[1:]
                assert not [line for line in body if line.strip() and line.strip() in text.splitlines()
                            and len(line.strip()) > 20 and line.strip() not in ns.get("__doc__", "")], (name, method)


def _class_keyed_tables(path: Path) -> list[str]:
    """Dict literals in ``path`` with three or more declared class names as keys."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            if len(keys & set(DECLARED)) >= 3:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_no_component_contract_table_is_left_in_the_grader():
    tables = [t for p in sorted((REPO / "grader").rglob("*.py")) for t in _class_keyed_tables(p)]
    assert not tables, tables


def test_a_declared_hint_names_its_mistake_from_the_numbers(monkeypatch):
    """A hint declared beside a class becomes the diagnosis when its evidence holds, and
    only then: ReLU with a slope of 0.5 for x < 0 gets it; ReLU ignoring v_bar does not."""
    from grader.checks import public as P
    hint = {"code": "test_negative_slope", "words": "wrong slope for x < 0", "advice": "x_bar is 0 where x < 0.",
            "evidence": "close(got[x > 0], want[x > 0]) and not close(got[x < 0], want[x < 0])", "operand": "x"}
    monkeypatch.setitem(contract.HINTS, "ReLU", (hint,))
    monkeypatch.setitem(P.DIAGNOSES, hint["code"], (hint["words"], hint["advice"]))

    class Sloped(reference.ReLU):
        def backward(self):
            self.x.grad += self.grad * np.where(self.x.value > 0, 1.0, 0.5)

    class Ignores(reference.ReLU):
        def backward(self):
            self.x.grad += self.x.value > 0

    for cls, diagnosis in ((Sloped, "test_negative_slope"), (Ignores, "upstream_ignored")):
        r = P.check_component({"ReLU": cls}, "ReLU", shapes=[(4, 3)], seed=3)
        assert not r.passed and r.diagnosis == diagnosis, r.message
    assert "wrong slope for x < 0" in P.check_component({"ReLU": Sloped}, "ReLU", seed=1).message
    assert P.check_component({"ReLU": reference.ReLU}, "ReLU", seed=1).passed


def test_a_wrong_forward_value_is_told_the_declared_formula():
    from grader.checks import public as P

    class Doubled(reference.Square):
        def forward(self):
            self.value = 2 * self.x.value ** 2

    r = P.check_component({"Square": Doubled}, "Square", seed=0)
    assert r.diagnosis == "forward_wrong" and DECLARED["Square"].text in r.message
