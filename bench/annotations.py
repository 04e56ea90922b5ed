"""Type-hint coverage of the grader's modules: the fraction of functions whose parameters
and return are all annotated.

Run: .venv/bin/python bench/annotations.py [PATH ...]   (default: grader/checks/*.py and
grader/grading/execute.py)

Prints one line per module: functions fully annotated / all functions, the ratio, and the
ratio over public functions only (no leading underscore); then the totals. ``self``/``cls``
need no annotation; ``__init__`` needs ``-> None`` like any other function. Functions in
strings (the child harness in ``execute.IO_SOURCE``) are not counted.
Before issue 12's typed boundaries: 120 of 363 functions (33%), public 26%.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = sorted((ROOT / "grader" / "checks").glob("*.py")) + [ROOT / "grader" / "grading" / "execute.py"]


def functions(tree: ast.Module) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]]:
    """(function, is a method) for every def in a module, nested ones included."""
    out: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((child, isinstance(node, ast.ClassDef)))
            visit(child)

    visit(tree)
    return out


def missing(fn: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[str]:
    """What ``fn`` leaves unannotated: parameter names, and "return"."""
    a = fn.args
    params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    if params and params[0].arg in ("self", "cls") and \
            not any(getattr(d, "id", None) == "staticmethod" for d in fn.decorator_list):
        params = params[1:]  # a method (or a function that becomes one: ``type(name, bases, {...})``)
    params += [p for p in (a.vararg, a.kwarg) if p is not None]
    out = [p.arg for p in params if p.annotation is None]
    if fn.returns is None:
        out.append("return")
    return out


def coverage(path: Path) -> dict:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    fns = functions(tree)
    done = [fn for fn, m in fns if not missing(fn, m)]
    public = [(fn, m) for fn, m in fns if not fn.name.startswith("_") or fn.name.startswith("__")]
    return {"functions": len(fns), "annotated": len(done), "public": len(public),
            "public_annotated": sum(1 for fn, m in public if not missing(fn, m))}


def main(paths: list[Path]) -> None:
    total = {"functions": 0, "annotated": 0, "public": 0, "public_annotated": 0}
    for path in paths:
        c = coverage(path)
        for k in total:
            total[k] += c[k]
        ratio = c["annotated"] / c["functions"] if c["functions"] else 1.0
        pub = c["public_annotated"] / c["public"] if c["public"] else 1.0
        print(f"{path.relative_to(ROOT)!s:38} {c['annotated']:4d} / {c['functions']:4d}  {ratio:5.0%}"
              f"   public {pub:5.0%}")
    print(f"{'total':38} {total['annotated']:4d} / {total['functions']:4d}  "
          f"{total['annotated'] / max(total['functions'], 1):5.0%}"
          f"   public {total['public_annotated'] / max(total['public'], 1):5.0%}")


if __name__ == "__main__":
    main([Path(p).resolve() for p in sys.argv[1:]] or DEFAULT)
