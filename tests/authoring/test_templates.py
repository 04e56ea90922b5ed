"""The template pipeline without kernels: parsing, pulling by name, solution marking,
the suite/test-cell contract, clear errors, the grader-facing API and the CLI."""
from __future__ import annotations

import textwrap

import pytest

import reference
from grader.authoring import TemplateError, discover, load_assignment, source_cells
from grader.authoring.pull import BEGIN, END, mark_solution, pull
from grader.cli import main

SUITE = """assignment = "toy"

[[test]]
id = "{test_id}"
points = 2
check = "component"
target = "Square"
[test.visible]
seed = 0
shapes = [[[]]]
"""


def make_assignment(root, template: str, test_id: str = "square", name: str = "toy"):
    d = root / name
    d.mkdir(parents=True)
    (d / f"{name}.py").write_text(textwrap.dedent(template))
    (d / "suite.toml").write_text(SUITE.format(test_id=test_id))
    return root


TOY = """\
# %% [markdown]
# # Toy
#
# text

# %% [given]
import numpy as np

# %% [given] from=reference.core#graph_lists reference.core:CompNode,unbroadcast

# %% [solution] from=reference.operations:Square keep=__init__

# %% [test] id=square
"""


def test_toy_assignment_cells_roles_ids_and_metadata(tmp_path):
    a = load_assignment("toy", make_assignment(tmp_path, TOY))
    assert [(c.id, c.role) for c in a.cells] == [
        ("markdown-1", "markdown"), ("given-1", "given"),
        ("given-graph-lists-compnode-unbroadcast", "given"), ("square-solution", "solution"),
        ("test_square", "test")]
    md, _, given, sol, test = a.cells
    assert md.source == "# Toy\n\ntext" and md.nbgrader is None
    assert given.source.startswith("components: list = []") and "class CompNode" in given.source
    assert given.nbgrader == {"grade": False, "grade_id": given.id, "locked": True,
                              "schema_version": 3, "solution": False, "task": False}
    assert sol.nbgrader["solution"] and not sol.nbgrader["locked"]
    assert test.nbgrader == {"grade": True, "grade_id": "test_square", "locked": True, "points": 2,
                             "schema_version": 3, "solution": False, "task": False}
    assert a.total_points == 2


def test_solution_bodies_are_marked_with_signature_and_docstring_outside():
    code, names = pull("reference.operations:Square", "here")
    assert names == ["Square"]
    marked = mark_solution(code, keep=("__init__",))
    assert marked.count(BEGIN) == marked.count(END) == 2  # forward and backward, not __init__
    assert '    def backward(self):\n        ### BEGIN SOLUTION\n        self.x.grad +=' in marked
    assert 'class Square(CompNode):\n    """x ** 2: x_bar = v_bar * 2x."""' in marked
    fn = mark_solution(pull("reference.by_hand:logistic_ls_grads", "here")[0])
    head, body = fn.split(BEGIN)
    assert head.rstrip().endswith('"""Return (L_reg, w_bar, b_bar), computed forward then backward by hand."""')
    assert body.rstrip().endswith("return L_reg, w_bar, b_bar\n    " + END)


@pytest.mark.parametrize("template, message", [
    (TOY.replace("Square keep", "Sqaure keep"), "reference.operations has no object named 'Sqaure'"),
    (TOY.replace("#graph_lists", "#no_such_region"), "no '# region no_such_region' marker"),
    (TOY.replace("reference.operations:", "numpy:"), "only be pulled from reference/"),
    (TOY.replace("# %% [test] id=square\n", ""), "suite test 'square' has no '# %% [test] id=square' cell"),
    (TOY + "\n# %% [test] id=square\n", "test id=square has several test cells"),
    (TOY.replace("[given]\nimport", "[giben]\nimport"), "unknown cell role [giben]"),
    (TOY.replace("# text", "text"), "markdown lines must start with '# '"),
])
def test_template_errors_name_the_problem(tmp_path, template, message):
    with pytest.raises(TemplateError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_assignment("toy", make_assignment(tmp_path, template))


def test_suite_test_without_cell_and_cell_without_suite_test(tmp_path):
    root = make_assignment(tmp_path, TOY, test_id="cube")
    with pytest.raises(TemplateError) as e:
        load_assignment("toy", root)
    assert "test cell id=square has no [[test]] with id = 'square'" in str(e.value)
    assert "suite test 'cube' has no '# %% [test] id=cube' cell" in str(e.value)


def test_scalar_backprop_tasks_points_and_sources():
    a = load_assignment("scalar_backprop")
    assert {t.id: t.points for t in a.tests} == {
        "add": 1, "mul": 2, "square": 1, "sigmoid": 2, "relu": 1, "backward": 3, "logistic_ls_grads": 2}
    cells = source_cells("scalar_backprop")
    assert [c.grade_id for c in cells.values() if c.role == "test"] == [t.grade_id for t in a.tests]
    solutions = {c.id for c in cells.values() if c.role == "solution"}
    assert solutions == {"add-solution", "mul-solution", "square-solution", "sigmoid-solution",
                         "relu-solution", "backward-solution", "logistic-ls-grads-solution"}
    # solutions are the reference's code, by name
    import inspect
    body = inspect.getsource(reference.core.Backward).split('    """\n', 1)[1]
    assert body in cells["backward-solution"].source.replace(f"    {BEGIN}\n", "")
    # the EDF core the notebook relies on is given, never a solution
    given = "\n".join(c.source for c in cells.values() if c.role == "given")
    for name in ("def clear_compgraph", "class Input", "class Parameter", "class CompNode",
                 "def Forward", "def SGD", "def unbroadcast", "components: list = []"):
        assert name in given
    test_backward = cells["test_backward"].source
    assert "report(check_backward(globals(), graph='standin:4', seed=0, test_id='backward'))" \
        in test_backward


def test_every_assignment_template_loads():
    for name in discover():
        assert load_assignment(name).tests


def test_cli_reports_unknown_assignment(tmp_path, capsys):
    assert main(["generate", "no_such_assignment", "--course", str(tmp_path)]) == 1
    assert "no assignment no_such_assignment" in capsys.readouterr().err
