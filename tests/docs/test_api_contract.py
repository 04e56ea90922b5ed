"""docs/api-contract.md against the code: every name in its tables exists in the reference
(or, for the names a notebook defines itself, in that assignment's notebook) and takes the
parameters shown, with the defaults shown; every target a suite grades is documented."""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import reference
import reference.cnn
import reference.mlp
from grader.authoring import discover, load_assignment

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "api-contract.md"
MODULES = (reference, reference.mlp, reference.cnn)
ROW = re.compile(r"^\| `(?P<code>[^`]+)` \|", re.M)
NOTEBOOK_ROW = re.compile(r"^\| `(?P<assignment>[a-z_]+)` \| `(?P<code>[^`]+)` \|", re.M)


def documented() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [m["code"] for m in ROW.finditer(text) if m["code"] not in set(discover())]


def notebook_defined() -> list[tuple[str, str]]:
    return [(m["assignment"], m["code"]) for m in NOTEBOOK_ROW.finditer(DOC.read_text(encoding="utf-8"))]


def parse(code: str) -> tuple[str, list[tuple[str, object]] | None]:
    """``Name(a, b=1)`` -> ("Name", [("a", EMPTY), ("b", 1)]); a bare name -> (name, None)."""
    node = ast.parse(code, mode="eval").body
    if not isinstance(node, ast.Call):
        return ast.unparse(node), None
    params = [(a.id, inspect.Parameter.empty) for a in node.args]
    params += [(k.arg, eval(ast.unparse(k.value), {"np": np})) for k in node.keywords]
    return ast.unparse(node.func), params


def resolve(dotted: str):
    head, *rest = dotted.split(".")
    obj = next((getattr(m, head) for m in MODULES if hasattr(m, head)), None)
    assert obj is not None, f"{head} is documented but the reference does not define it"
    for attr in rest:
        assert hasattr(obj, attr), f"{dotted}: {head} has no {attr}"
        obj = getattr(obj, attr)
    return obj


def check_signature(code: str, actual: list[inspect.Parameter], params: list) -> None:
    actual = [p for p in actual if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert len(actual) >= len(params), f"{code}: takes {[p.name for p in actual]}"
    for p, (name, default) in zip(actual, params):
        assert p.name == name, f"{code}: parameter {p.name!r} where the contract says {name!r}"
        assert p.default is default or p.default == default, f"{code}: {name} defaults to {p.default!r}"
    extra = actual[len(params):]
    assert all(p.default is not inspect.Parameter.empty for p in extra), f"{code}: more required parameters"


def test_the_contract_documents_the_core_and_every_assignment():
    names = {parse(c)[0] for c in documented()}
    assert {"components", "Backward", "SoftmaxCrossEntropy", "Dual", "Var.backward", "logistic_ls_grads",
            "Conv2D", "build_mlp"} <= names
    assert len(names) >= 45


@pytest.mark.parametrize("code", documented())
def test_every_documented_name_exists_with_its_signature(code):
    name, params = parse(code)
    obj = resolve(name)
    if params is None:
        return
    sig = list(inspect.signature(obj).parameters.values())
    if inspect.isfunction(obj) and "." in name and sig and sig[0].name == "self":
        sig = sig[1:]
    check_signature(code, sig, params)


@pytest.mark.parametrize("assignment, code", notebook_defined())
def test_names_a_notebook_defines_are_defined_there(assignment, code):
    name, params = parse(code)
    trees = [ast.parse(c.source) for c in load_assignment(assignment).cells if c.role in ("solution", "given")]
    funcs = [n for t in trees for n in t.body if isinstance(n, ast.FunctionDef) and n.name == name]
    assigned = [n for t in trees for n in t.body if isinstance(n, ast.Assign)
                and any(isinstance(tg, ast.Name) and tg.id == name for tg in n.targets)]
    if params is None:
        assert assigned or funcs, f"{assignment} does not define {name}"
    else:
        assert len(funcs) == 1, f"{assignment} does not define {name}()"
        assert [a.arg for a in funcs[0].args.args] == [p for p, _ in params]


def test_every_graded_target_is_in_the_contract():
    names = {parse(c)[0] for c in documented()} | {parse(c)[0] for _, c in notebook_defined()}
    heads = names | {n.split(".")[0] for n in names}
    for assignment in discover():
        for t in load_assignment(assignment).tests:
            if isinstance(t.target, str):
                assert t.target in heads, f"{assignment}: suite test {t.id} grades {t.target}, not in the contract"
