"""Check kinds by name: every module of ``grader/checks/`` that registers a ``Kind``.

A kind module ends with ``register(Kind("<name>", ...))``; ``kind_modules()`` finds those
calls in the sources (so the bundler needs no import), and importing this module imports
every kind module, which fills ``base.KINDS``. Adding a kind is adding one module.
"""
from __future__ import annotations

import ast
import functools
import importlib
from pathlib import Path

from .base import KINDS, Kind

CHECKS_DIR = Path(__file__).resolve().parent


def _registered(path: Path) -> list[str]:
    """Kind names registered at the top level of ``path`` (``register(Kind("name", ...))``)."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "register" and call.args
                and isinstance(call.args[0], ast.Call) and getattr(call.args[0].func, "id", None) == "Kind"
                and call.args[0].args and isinstance(call.args[0].args[0], ast.Constant)):
            names.append(str(call.args[0].args[0].value))
    return names


@functools.lru_cache(maxsize=None)
def _kind_modules(directory: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, path.stem) for path in sorted(Path(directory).glob("*.py"))
                 for name in _registered(path))


def kind_modules(directory: Path = CHECKS_DIR) -> dict[str, str]:
    """kind name -> module name (without the package), in module-name order."""
    pairs = _kind_modules(str(directory))
    seen: dict[str, str] = {}
    for name, module in pairs:
        if name in seen:
            raise ValueError(f"check kind {name!r} registered by both {seen[name]}.py and {module}.py")
        seen[name] = module
    return seen


for _module in dict.fromkeys(kind_modules().values()):
    importlib.import_module(f"{__package__}.{_module}")


def kind(name: str) -> Kind:
    """The registered kind ``name``; ValueError for an unknown check."""
    if name not in KINDS:
        raise ValueError(f"unknown check {name!r}")
    return KINDS[name]
