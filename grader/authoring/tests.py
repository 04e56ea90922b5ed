"""Rendering an autograded test cell from its ``suite.toml`` table.

The visible part calls the public checks shipped beside the notebook
(``backprop_checks.py``); the hidden part calls the trusted ``run_hidden`` with the
whole test table and sits between nbgrader's hidden-test markers, so
``nbgrader generate_assignment`` strips it from the release.
"""
from __future__ import annotations

import pprint
from dataclasses import dataclass

from .template import SuiteTest, TemplateError

BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_IMPORT = "from grader.checks.hidden import run_hidden"

@dataclass(frozen=True)
class Visible:
    """How a check kind's visible test calls its public check function."""

    func: str
    head: tuple = ()           # positional arguments after globals(); "{target}" is the test's target
    split: tuple = ()          # (plural, singular): one call per item of a visible list parameter
    target_kw: str | None = None  # pass the test's target as this keyword instead


SPLIT_SEEDS = ("seeds", "seed")
VISIBLE_CHECKS = {
    "component": Visible("check_component", ("{target}",), (SPLIT_SEEDS,)),
    "backward_loop": Visible("check_backward", (), (SPLIT_SEEDS, ("graphs", "graph"))),
    "function": Visible("check_function", ("{target}",), (SPLIT_SEEDS,)),
    "dual": Visible("check_dual", (), (SPLIT_SEEDS,)),
    "tape": Visible("check_tape", (), (SPLIT_SEEDS,)),
    # measured on the notebook's own held-out split (the `load-data` cell's X_test, y_test)
    "mlp_accuracy": Visible("check_mlp_accuracy", ("X_test", "y_test"), (), target_kw="predict"),
    "mlp_build": Visible("check_mlp_build"),
    "mlp_predict": Visible("check_mlp_predict"),
    "mlp_train_step": Visible("check_mlp_train_step"),
    "mlp_train": Visible("check_mlp_train"),
}


def visible_calls(test: SuiteTest) -> list[str]:
    """The public check calls for this test, with the ``[test.visible]`` parameters."""
    v = VISIBLE_CHECKS[test.check]
    if ("{target}" in v.head or v.target_kw) and not test.target:
        raise TemplateError(f"suite test {test.id!r}: check {test.check!r} needs a target")
    head = ["globals()"] + [repr(test.target) if a == "{target}" else a for a in v.head]
    params = dict(test.visible)
    if v.target_kw:
        params[v.target_kw] = test.target
    runs = [{}]
    for plural, singular in v.split:
        if plural in params:
            runs = [{**run, singular: item} for run in runs for item in params.pop(plural)]
    calls = []
    for run in runs:
        kwargs = {**params, **run, "test_id": test.id}
        args = head + [f"{k}={_literal(val, len(k) + 5)}" for k, val in sorted(kwargs.items())]
        calls.append(_call(v.func, args))
    return calls


def render_test(test: SuiteTest, preamble: str, public_names: set[str]) -> str:
    """The source of the autograded test cell for ``test``."""
    func = VISIBLE_CHECKS[test.check].func
    missing = sorted({func, "report"} - public_names)
    if missing:
        raise TemplateError(f"suite test {test.id!r} (check {test.check!r}) needs "
                            f"{', '.join(missing)} in the checks bundled for it (grader/checks/), which define none")
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
