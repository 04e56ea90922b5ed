"""Rendering an autograded test cell from its ``suite.toml`` table.

The visible part calls the public checks shipped beside the notebook
(``backprop_checks.py``); the hidden part calls the trusted ``run_hidden`` with the
whole test table and sits between nbgrader's hidden-test markers, so
``nbgrader generate_assignment`` strips it from the release.
"""
from __future__ import annotations

import pprint

from .template import SuiteTest, TemplateError

BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_IMPORT = "from grader.checks.hidden import run_hidden"

# check kind -> (public check function, whether it takes the test's target as 2nd argument,
# a visible list parameter checked one item per call: {"graphs": "graph"} renders
# check_backward(..., graph=g) for each g of graphs)
VISIBLE_CHECKS = {
    "component": ("check_component", True, {}),
    "backward_loop": ("check_backward", False, {"graphs": "graph"}),
    "function": ("check_function", True, {}),
    "dual": ("check_dual", False, {}),
    "tape": ("check_tape", False, {}),
    "mlp_accuracy": ("check_accuracy", False, {}),
}


def visible_calls(test: SuiteTest) -> list[str]:
    """The public check calls for this test, with the ``[test.visible]`` parameters."""
    func, takes_target, split = VISIBLE_CHECKS[test.check]
    head = ["globals()"]
    if takes_target:
        if not test.target:
            raise TemplateError(f"suite test {test.id!r}: check {test.check!r} needs a target")
        head.append(repr(test.target))
    params = dict(test.visible)
    runs = [{}]
    for plural, singular in split.items():
        if plural in params:
            runs = [{singular: item} for item in params.pop(plural)]
    calls = []
    for run in runs:
        kwargs = {**params, **run, "test_id": test.id}
        args = head + [f"{k}={_literal(v, len(k) + 5)}" for k, v in sorted(kwargs.items())]
        calls.append(_call(func, args))
    return calls


def render_test(test: SuiteTest, preamble: str, public_names: set[str]) -> str:
    """The source of the autograded test cell for ``test``."""
    func = VISIBLE_CHECKS[test.check][0]
    missing = sorted({func, "report"} - public_names)
    if missing:
        raise TemplateError(f"suite test {test.id!r} (check {test.check!r}) needs "
                            f"{', '.join(missing)} in grader/checks/public.py, which defines none")
    lines = [preamble] if preamble else []
    lines += [f"from backprop_checks import {func}, report", ""]
    lines += [f"report({call})" for call in visible_calls(test)]
    if test.hidden:
        lines += [BEGIN_HIDDEN, HIDDEN_IMPORT, "",
                  f"report({_call('run_hidden', ['globals()', _literal(test.table, 4)])})", END_HIDDEN]
    return "\n".join(lines)


def _call(func: str, args: list[str]) -> str:
    """``func(a, b)`` on one line when short, else one argument per indented line."""
    one_line = f"{func}({', '.join(args)})"
    if len(one_line) <= 80 and "\n" not in one_line:
        return one_line
    return f"{func}(\n" + "".join(f"    {a},\n" for a in args) + ")"


def _literal(value, indent: int) -> str:
    """A deterministic Python literal for TOML data (keys sorted), continuation lines indented."""
    text = pprint.pformat(value, sort_dicts=True, width=88 - indent, compact=True)
    return text.replace("\n", "\n" + " " * indent)
