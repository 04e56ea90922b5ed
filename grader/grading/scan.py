"""Flags for the TA: what a submission's code *tries* to do that a course solution never needs.

Purely informational (a static look at the source; no effect on any grade): the sandbox
and the trusted judge are what make these attempts useless, the flags say who tried.
"""
from __future__ import annotations

import ast

SUSPICIOUS_MODULES = {"os", "sys", "subprocess", "socket", "ctypes", "pickle", "marshal", "builtins",
                      "importlib", "multiprocessing", "signal", "shutil", "threading", "gc", "inspect",
                      "urllib", "http", "requests", "resource", "pty", "mmap"}
SUSPICIOUS_CALLS = {"settrace", "setprofile", "_exit", "fork", "exit", "system", "popen", "kill",
                    "open", "exec", "eval", "compile", "__import__", "setrecursionlimit"}
SUSPICIOUS_TEXT = ("/work", "/root", "/home", "reference/", "gradebook", "hidden.py", "suite.toml", "../",
                   "/etc/", "/proc/", "course/")
PATCHED = {"np", "numpy", "builtins", "__builtins__", "testing", "sys", "math"}


def scan(cells: list[dict]) -> list[str]:
    flags: list[str] = []
    for cell in cells:
        if cell.get("role") not in ("solution", "code", "added") or not cell.get("source"):
            continue
        try:
            tree = ast.parse(cell["source"])
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        found: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [f"imports {a.name}" for a in node.names if a.name.split(".")[0] in SUSPICIOUS_MODULES]
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] in SUSPICIOUS_MODULES | {"reference", "grader"}:
                    found.append(f"imports from {node.module}")
            elif isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
                if name in SUSPICIOUS_CALLS:
                    found.append(f"calls {name}()")
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Attribute) and _root(t) in PATCHED:
                        found.append(f"assigns {ast.unparse(t)[:60]}")
            elif isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Attribute) and b.attr == "NodeTransformer" for b in node.bases):
                found.append("defines an AST transformer")
            elif isinstance(node, ast.FunctionDef) and node.name in ("__eq__", "__array__", "__reduce__",
                                                                     "__array_ufunc__", "__float__"):
                found.append(f"defines {node.name}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                hits = [t for t in SUSPICIOUS_TEXT if t in node.value]
                if hits:
                    found.append(f"mentions {node.value[:60]!r}")
        for what in dict.fromkeys(found):
            flags.append(f"suspicious: cell {cell['id']} {what}")
    return flags[:30]


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None
