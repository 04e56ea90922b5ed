"""The student bundle ``backprop_checks.py``: the check modules an assignment's kinds need,
concatenated into one self-contained module.

A kind module and the shared modules it imports (``from .base import ...``) are taken in
dependency order; their relative imports are dropped (the names are then defined earlier
in the same file) and their standard-library/NumPy imports gathered once at the top. The
same text is what ``backprop generate`` writes beside the notebook and what the grading
child loads as ``backprop_checks``. Rules checked here, so a bundle always runs alone:
child-safe modules import only the standard library and NumPy, use no ``from __future__``
import, and define every top-level name in one module only.
"""
from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

from .registry import CHECKS_DIR, kind_modules

ALLOWED_IMPORTS = {"numpy"} | set(sys.stdlib_module_names)


# Modules that read trusted data (the reference's declarations) in the parent; a bundle
# holds the data they read, as the literal their ``bundle_text()`` returns.
DATA_MODULES = ("declared",)


class BundleError(Exception):
    """The check modules cannot be bundled (a grader bug, found at generate time)."""


def _text(module: str, directory: Path) -> str:
    """A module's source as bundled: a data module's literal, else the file."""
    path = directory / f"{module}.py"
    if not path.is_file():
        raise BundleError(f"{path} not found")
    if module in DATA_MODULES and directory == CHECKS_DIR:
        return importlib.import_module(f"{__package__}.{module}").bundle_text()
    return path.read_text(encoding="utf-8")


def _tree(module: str, directory: Path) -> ast.Module:
    return ast.parse(_text(module, directory), str(directory / f"{module}.py"))


def _dependencies(module: str, directory: Path) -> list[str]:
    """The package modules ``module`` imports (``from .x import ...``), in import order."""
    deps = []
    for node in _tree(module, directory).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level != 1 or not node.module:
                raise BundleError(f"{module}.py:{node.lineno}: only `from .<module> import ...` can be bundled")
            deps.append(node.module)
    return deps


def modules_for(kinds: Iterable[str] | None = None, directory: Path = CHECKS_DIR) -> list[str]:
    """The modules a bundle of ``kinds`` (default: every kind) needs, dependencies first."""
    registered = kind_modules(directory)
    kinds = list(registered) if kinds is None else list(dict.fromkeys(kinds))
    unknown = [k for k in kinds if k not in registered]
    if unknown:
        raise BundleError(f"no check kind {', '.join(map(repr, unknown))} (known: {', '.join(registered)})")
    order: list[str] = []
    visiting: set[str] = set()

    def visit(module: str) -> None:
        if module in order:
            return
        if module in visiting:
            raise BundleError(f"import cycle through {module}.py")
        visiting.add(module)
        for dep in _dependencies(module, directory):
            visit(dep)
        visiting.discard(module)
        order.append(module)

    for k in sorted(kinds, key=list(registered).index):
        visit(registered[k])
    return order


def child_safe_modules(directory: Path = CHECKS_DIR) -> list[str]:
    """Every module that can ship to students (the bundle of all kinds)."""
    return modules_for(None, directory)


def _top_level_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else \
        [node.target] if isinstance(node, (ast.AnnAssign, ast.For)) else []
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def bundle(kinds: Iterable[str] | None = None, directory: Path = CHECKS_DIR) -> str:
    """The source of ``backprop_checks`` for ``kinds``: one module, stdlib + NumPy only."""
    modules = modules_for(kinds, directory)
    imports: list[str] = []
    sections: list[str] = []
    owner: dict[str, str] = {}
    docstring = ""
    for module in modules:
        text = _text(module, directory)
        tree = ast.parse(text)
        lines = text.splitlines(keepends=True)
        drop: set[int] = set()
        about = ""
        for i, node in enumerate(tree.body):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                    raise BundleError(f"{module}.py:{node.lineno}: `from __future__` cannot be bundled")
                if not (isinstance(node, ast.ImportFrom) and node.level):
                    for name in names:
                        if name.split(".")[0] not in ALLOWED_IMPORTS:
                            raise BundleError(f"{module}.py:{node.lineno}: imports {name}; "
                                              "only the standard library and numpy may be shipped")
                    statement = "".join(lines[node.lineno - 1:node.end_lineno]).strip()
                    if statement not in imports:
                        imports.append(statement)
                drop.update(range(node.lineno, node.end_lineno + 1))
            elif i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                if not docstring:  # the first module's docstring opens the bundle
                    docstring = "".join(lines[node.lineno - 1:node.end_lineno])
                else:  # the others head their sections as comments
                    about = "\n".join(f"# {line}".rstrip() for line in str(node.value.value).strip().splitlines())
                drop.update(range(node.lineno, node.end_lineno + 1))
            else:
                for name in _top_level_names(node):
                    if owner.setdefault(name, module) != module:
                        raise BundleError(f"{module}.py:{node.lineno}: `{name}` is also defined in "
                                          f"{owner[name]}.py; names must be unique across bundled modules")
        body = "".join(line for n, line in enumerate(lines, 1) if n not in drop).strip("\n")
        head = f"# {'-' * 78}\n# {module}.py\n" + (f"#\n{about}\n" if about else "") + f"# {'-' * 78}"
        sections.append(f"{head}\n\n{body}\n")
    return docstring + "\n" + "\n".join(imports) + "\n\n\n" + "\n\n\n".join(sections)
