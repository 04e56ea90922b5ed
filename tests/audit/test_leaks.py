"""The course-wide leak check finds a solution planted in an earlier notebook's given code."""
from __future__ import annotations

import shutil

import pytest

from grader.audit import leaks
from grader.authoring.assignment import ASSIGNMENTS

ANCHOR = "# %% [given] from=reference.core:Forward,SGD\n"
PLANT = "# %% [given] from=reference.operations:Exp\n\n"


def _course(tmp_path, plant: bool):
    root = tmp_path / "assignments"
    for name in ("scalar_backprop", "tensor_edf"):
        shutil.copytree(ASSIGNMENTS / name, root / name)
    if plant:
        path = root / "scalar_backprop" / "scalar_backprop.py"
        text = path.read_text()
        assert text.count(ANCHOR) == 1
        path.write_text(text.replace(ANCHOR, PLANT + ANCHOR))
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _course(tmp_path_factory.mktemp("planted"), plant=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return _course(tmp_path_factory.mktemp("clean"), plant=False)


def _exp(items):
    return sorted((x["given_in"], x["unit"], x["test"]) for x in items if x["unit"].startswith("Exp."))


def test_planted_leak_is_found(planted):
    result = leaks.check(root=planted)
    assert result["order"] == ["scalar_backprop", "tensor_edf"]
    assert _exp(result["leaks"]) == [("scalar_backprop", "Exp.backward", "exp"),
                                     ("scalar_backprop", "Exp.forward", "exp")]
    crit = leaks.criterion(result)
    assert not crit["ok"] and crit["failures"] == len(result["leaks"])
    assert "LEAK: scalar_backprop" in leaks.text(result) and "Exp.backward" in leaks.text(result)


def test_without_the_plant_there_is_no_exp_leak(clean):
    assert _exp(clean and leaks.check(root=clean)["leaks"]) == []


def test_the_same_code_given_later_is_an_extension_not_a_leak(planted):
    result = leaks.check(order=["tensor_edf", "scalar_backprop"], root=planted)
    assert _exp(result["leaks"]) == []
    assert _exp(result["extensions"]) == [("scalar_backprop", "Exp.backward", "exp"),
                                          ("scalar_backprop", "Exp.forward", "exp")]


def test_docstrings_and_names_do_not_hide_a_copy():
    import ast
    a = ast.parse('def f(x):\n    """doc"""\n    return x + 1\n').body[0]
    b = ast.parse('def g(x):\n    return x + 1\n').body[0]
    c = ast.parse('def g(x):\n    return x - 1\n').body[0]
    assert leaks.body_key(a) == leaks.body_key(b) != leaks.body_key(c)
