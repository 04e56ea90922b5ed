"""``backprop generate`` stops on an assignment that cannot be graded, with a message naming
the missing piece: targets not declared or not exported, a source notebook short of full
marks, release stubs that pass or crash a test. Point counts in the prose come from suite.toml."""
from __future__ import annotations

import re

import pytest

from grader.authoring import TemplateError, discover, load_assignment
from grader.authoring.assignment import ASSIGNMENTS
from grader.authoring.checks import GenerateCheckError, render_points
from grader.authoring.course import generate
from grader.cli import main

from .test_templates import TOY, make_assignment

LEAKY_SUITE = """

[[test]]
id = "leaky"
points = 1
check = "component"
target = "LeakyReLU"
[test.visible]
seed = 0
"""


def test_a_component_the_reference_does_not_declare_stops_generate_before_anything_is_written(tmp_path):
    root = make_assignment(tmp_path / "a", TOY + "\n# %% [test] id=leaky\n")
    with (root / "toy" / "suite.toml").open("a") as f:
        f.write(LEAKY_SUITE)
    with pytest.raises(GenerateCheckError) as e:
        generate(["toy"], tmp_path / "course", root=root)
    msg = str(e.value)
    assert "suite.toml test 'leaky' grades LeakyReLU, which reference/ does not declare: add a contract " \
           "beside its class" in msg
    assert "which reference/ does not export" in msg and "which the notebook never defines" in msg
    assert not (tmp_path / "course" / "source").exists()
    assert main(["generate", "toy", "--course", str(tmp_path / "c2")]) == 1  # the CLI: a message, exit 1


def test_a_declared_class_the_notebook_does_not_define_is_named(tmp_path):
    template = TOY.replace("# %% [solution] from=reference.operations:Square keep=__init__\n", "")
    root = make_assignment(tmp_path / "a", template)
    with pytest.raises(GenerateCheckError, match="grades Square, which the notebook never defines"):
        generate(["toy"], tmp_path / "course", root=root)


def test_loop_graph_classes_must_be_declared(tmp_path):
    root = make_assignment(tmp_path / "a", TOY + "\n# %% [test] id=loop\n")
    with (root / "toy" / "suite.toml").open("a") as f:
        f.write('\n[[test]]\nid = "loop"\npoints = 1\ncheck = "backward_loop"\nclasses = ["Square", "Softplus"]\n'
                '[test.visible]\ngraphs = ["random:3"]\n')
    with pytest.raises(GenerateCheckError, match="builds graphs from Softplus, which reference/ does not declare"):
        generate(["toy"], tmp_path / "course", root=root)


def test_the_source_earns_full_marks_and_the_stubs_fail_cleanly(tmp_path):
    root = make_assignment(tmp_path / "a", TOY)
    (b,) = generate(["toy"], tmp_path / "course", root=root, verify=True)
    assert "source notebook passes 1 tests" in b.log[-1]


BROKEN = """\
# %% [markdown]
# # Toy

# %% [given]
import numpy as np

# %% [given] from=reference.core#graph_lists reference.core:CompNode,unbroadcast

# %% [given] from=reference.operations:Square

# %% [solution] from=reference.operations:Exp keep=__init__

# %% [code]
import backprop_checks
_check = backprop_checks.check_component


def _crashing(ns, name, *args, **kwargs):
    return {}["LeakyReLU"] if name == "Exp" else _check(ns, name, *args, **kwargs)


backprop_checks.check_component = _crashing

# %% [test] id=square

# %% [test] id=exp
"""


def test_generate_names_a_failing_source_a_passing_stub_and_a_crashing_test(tmp_path):
    root = make_assignment(tmp_path / "a", BROKEN)
    with (root / "toy" / "suite.toml").open("a") as f:
        f.write('\n[[test]]\nid = "exp"\npoints = 1\ncheck = "component"\ntarget = "Exp"\n[test.visible]\nseed = 0\n')
    with pytest.raises(GenerateCheckError) as e:
        generate(["toy"], tmp_path / "course", root=root, verify=True)
    msg = str(e.value)
    assert "the source notebook fails test test_exp (KeyError: 'LeakyReLU')" in msg
    assert "the release notebook passes test test_square on the stubs" in msg
    assert "the release notebook's test test_exp does not fail cleanly on the stubs (KeyError" in msg
    assert "test_square" not in msg.split("passes test test_square")[0]  # the source passes square


def test_point_markers_take_their_numbers_from_the_suite(tmp_path):
    tests = load_assignment("tensor_edf").tests
    assert render_points("({{points:add,mul}}; {{points:exp}}; {{points_n:*}})", tests, "here") == \
        f"(6 points; 1 point; {sum(t.points for t in tests):g})"
    with pytest.raises(TemplateError, match=r"\{\{points:nope\}\} names no test of suite.toml"):
        render_points("{{points:nope}}", tests, "here")
    root = make_assignment(tmp_path, TOY.replace("# text", "# worth {{points:square}}"))
    assert load_assignment("toy", root).cells[0].source == "# Toy\n\nworth 2 points"


@pytest.mark.parametrize("name", discover())
def test_no_template_types_a_point_count_by_hand(name):
    """Every "Task N (...)" heading and every row of a points table takes its count from a marker."""
    text = (ASSIGNMENTS / name / f"{name}.py").read_text()
    in_table = False
    for line in text.splitlines():
        if re.match(r"# \| task \| .* \| points \|", line):
            in_table = True
            continue
        if in_table and not line.startswith("# |"):
            in_table = False
        if in_table and not line.startswith("# |---"):
            last = line.rstrip(" |").rsplit("|", 1)[-1].strip()
            assert "{{points" in last or last == "not graded", line
        if re.match(r"# #+ Task \d", line) and re.search(r"\d+(\.\d+)? points?\b", line):
            pytest.fail(f"{name}: a point count typed by hand: {line}")
    assert "{{points" in text
