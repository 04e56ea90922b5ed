"""Pulling solution and given code from ``reference/`` by name, and marking solutions.

``module:Name,Name`` takes each object's source with ``inspect.getsource``;
``module#region`` takes the lines between ``# region <name>`` and ``# endregion``.
Solution code is never pasted into templates: it is read here, from the reference.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import textwrap

from .template import TemplateError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def pull(item: str, where: str) -> tuple[str, list[str]]:
    """The source text of one ``from=`` item and the names it stands for."""
    if "#" in item:
        module_name, _, region = item.partition("#")
        module = _import(module_name, where)
        return _region(module, region, where), [region]
    module_name, colon, names = item.partition(":")
    if not colon or not names:
        raise TemplateError(f"{where}: from={item!r} must be 'module:Name,Name' or 'module#region'")
    module = _import(module_name, where)
    parts = []
    for name in names.split(","):
        obj = getattr(module, name, None)
        if obj is None:
            raise TemplateError(f"{where}: {module_name} has no object named {name!r}")
        try:
            parts.append(textwrap.dedent(inspect.getsource(obj)).strip("\n"))
        except (TypeError, OSError) as e:
            raise TemplateError(f"{where}: cannot read the source of {module_name}.{name}: {e}") from e
    return "\n\n\n".join(parts), names.split(",")


def _import(module_name: str, where: str):
    if not (module_name == "reference" or module_name.startswith("reference.")):
        raise TemplateError(f"{where}: code can only be pulled from reference/, not {module_name!r}")
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise TemplateError(f"{where}: cannot import {module_name}: {e}") from e


def _region(module, region: str, where: str) -> str:
    lines = inspect.getsource(module).splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == f"# region {region}")
    except StopIteration:
        raise TemplateError(f"{where}: {module.__name__} has no '# region {region}' marker") from None
    try:
        end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "# endregion")
    except StopIteration:
        raise TemplateError(f"{where}: region {region!r} in {module.__name__} has no '# endregion'") from None
    return textwrap.dedent("\n".join(lines[start + 1:end])).strip("\n")


def mark_solution(code: str, keep: tuple[str, ...] = (), where: str = "") -> str:
    """Wrap every function/method body in solution markers; signatures and docstrings stay outside.

    Methods named in ``keep`` (e.g. ``__init__``) are left as given code. Code with no
    function at all (a region of statements) is wrapped whole.
    """
    tree = ast.parse(code)
    lines = code.splitlines()
    functions = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.append(node)
        elif isinstance(node, ast.ClassDef):
            functions += [f for f in node.body
                          if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name not in keep]
    if not functions:
        if any(isinstance(n, ast.ClassDef) for n in tree.body):
            raise TemplateError(f"{where}: nothing to mark as solution (every method is kept)")
        return "\n".join([BEGIN, *lines, END])
    # insert from the bottom up so earlier line numbers stay valid
    for start, end, indent in sorted((_body_span(f, lines, where) for f in functions), reverse=True):
        lines[end:end] = [indent + END]
        lines[start:start] = [indent + BEGIN]
    return "\n".join(lines)


def _body_span(func, lines: list[str], where: str) -> tuple[int, int, str]:
    """0-based [start, end) line span of a function's body after its docstring, and its indent."""
    body = func.body
    has_doc = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
        and isinstance(body[0].value.value, str)
    stmts = body[1:] if has_doc else body
    if not stmts:
        raise TemplateError(f"{where}: {func.name} has no body to mark as solution")
    if stmts[0].lineno == func.lineno:
        raise TemplateError(f"{where}: {func.name} has its body on the 'def' line; cannot mark it")
    start = body[0].end_lineno if has_doc else stmts[0].lineno - 1
    while not lines[start].strip():  # skip blank lines after the docstring
        start += 1
    first = lines[stmts[0].lineno - 1]
    return start, func.end_lineno, first[:len(first) - len(first.lstrip())]
