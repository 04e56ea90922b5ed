"""``# %% [code] experiment``: a cell that only times or plots. The header is parsed strictly,
the rendered notebook carries a mark, and the role reaches grading from the template."""
from __future__ import annotations

import json
import re
import textwrap

import pytest

from grader.authoring import TemplateError, generate, load_assignment
from grader.authoring.template import parse_template
from grader.grading.context import source_notebook_cells


def _template(tmp_path, header: str):
    p = tmp_path / "t.py"
    p.write_text(textwrap.dedent(f"""\
        # %% [markdown]
        # # T
        {header}
        x = 1
        """))
    return p


def test_the_experiment_word_is_a_flag_of_code_cells(tmp_path):
    cells = parse_template(_template(tmp_path, "# %% [code] experiment id=timing"))
    assert cells[1].role == "code" and cells[1].options == {"experiment": True, "id": "timing"}


@pytest.mark.parametrize("header, why", [
    ("# %% [given] experiment id=timing", "only allowed on [code]"),
    ("# %% [code] experiment", "needs a stable id"),
    ("# %% [code] experimental id=timing", "cannot read header option"),
])
def test_misplaced_or_anonymous_experiment_cells_are_errors(tmp_path, header, why):
    with pytest.raises(TemplateError, match=re.escape(why)):
        parse_template(_template(tmp_path, header))


@pytest.mark.parametrize("assignment, cell_ids", [
    ("forward_mode", {"experiment-cost"}),
    ("mlp_training", {"show-digits", "experiment-learning-rate", "experiment-depth"}),
])
def test_timing_and_plot_cells_are_marked_in_the_generated_notebooks(tmp_path, assignment, cell_ids):
    a = load_assignment(assignment)
    assert {c.id for c in a.cells if c.role == "experiment"} == cell_ids
    generate([assignment], tmp_path)
    for folder in ("source", "release"):
        nb = json.loads((tmp_path / folder / assignment / f"{assignment}.ipynb").read_text())
        marked = {c["id"]: c for c in nb["cells"] if c["metadata"].get("backprop", {}).get("experiment")}
        assert set(marked) == cell_ids
        # an ordinary editable cell for the student: no nbgrader role, code kept in the release
        assert all(c["cell_type"] == "code" and "nbgrader" not in c["metadata"] for c in marked.values())
        assert all("raise NotImplementedError" not in "".join(c["source"]) for c in marked.values())
    # grading without the template reads the role from the generated (trusted) source notebook
    roles = {c.id: c.role for c in source_notebook_cells(tmp_path / "source" / assignment / f"{assignment}.ipynb")}
    assert {i for i, r in roles.items() if r == "experiment"} == cell_ids
