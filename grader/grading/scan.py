"""Flags for the TA: what a submission's code *tries* to do that a course solution never needs.

A static look at the source, with no effect on any grade by itself: the sandbox, the private
harness and the trusted judge are what make these attempts useless; the flags say who tried.
Two levels: "suspicious: ..." (unusual for a course solution: os, open, eval...) and
"needs review: ..." (aimed at the grading harness: defining or rebinding its names, importing
the grader's modules, patching the modules it uses, reaching into frames or the garbage
collector), which puts the submission on the TA's review list.
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

REVIEW = "needs review: "
# modules a notebook imports only to reach the harness: the grader's own, and introspection
GRADER_MODULES = {"backprop_checks", "backprop_grading_io", "grader", "reference", "child", "protocol"}
REACHING_MODULES = {"gc", "inspect", "ctypes", "importlib", "builtins"}
# attributes that lead from student code to other code's frames, globals, code and objects
REACHING_ATTRS = {"f_back", "f_globals", "f_locals", "f_builtins", "tb_frame", "gi_frame", "cr_frame", "ag_frame",
                  "__globals__", "__code__", "__closure__", "__subclasses__", "_getframe", "__builtins__",
                  "_current_frames", "get_referrers", "get_referents", "get_objects"}
# names of the harness's entry points and of its modules (a course solution never defines them)
HARNESS_WORDS = ("probe", "judge", "backprop_checks", "backprop_grading_io", "grading_io")
HARNESS_NAMES = {"inject", "harness", "_harness"}


def _harness_name(name: str) -> bool:
    low = name.lower()
    return name in HARNESS_NAMES or any(w in low for w in HARNESS_WORDS)


def _review(node: ast.AST) -> list[str]:
    """What in ``node`` is aimed at the grading harness (one node, not its children)."""
    if isinstance(node, ast.Import):
        return [f"imports {a.name}" for a in node.names
                if a.name.split(".")[0] in GRADER_MODULES | REACHING_MODULES]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [f"imports from {node.module}"] if node.module.split(".")[0] in GRADER_MODULES | REACHING_MODULES else []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _harness_name(node.name):
        return [f"defines {node.name}, a name of the grading harness"]
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)) and _harness_name(node.id):
        return [f"binds {node.id}, a name of the grading harness"]
    if isinstance(node, ast.Attribute):
        if node.attr in REACHING_ATTRS:
            return [f"reaches {node.attr} (frames, globals or objects of other code)"]
        if isinstance(node.ctx, (ast.Store, ast.Del)) and _root(node) in PATCHED:
            return [f"patches {ast.unparse(node)[:60]}"]
        if isinstance(node.ctx, ast.Store) and _harness_name(node.attr):
            return [f"binds {ast.unparse(node)[:60]}, a name of the grading harness"]
        if node.attr == "modules" and _root(node) == "sys":
            return ["uses sys.modules"]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "__import__":
            return ["calls __import__()"]
        if node.func.id in ("setattr", "delattr") and node.args and _root(node.args[0]) in PATCHED:
            return [f"patches {ast.unparse(node.args[0])[:40]} with {node.func.id}()"]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
            w in node.value for w in ("backprop_checks", "backprop_grading_io")):
        return [f"mentions {node.value[:60]!r}"]
    return []


def scan(cells: list[dict]) -> list[str]:
    """"needs review: ..." flags first (harness-aimed), then "suspicious: ..." (unusual code)."""
    reviews: list[str] = []
    flags: list[str] = []
    for cell in cells:
        if cell.get("role") not in ("solution", "code", "added") or not cell.get("source"):
            continue
        try:
            tree = ast.parse(cell["source"])
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        found: list[str] = []
        review: list[str] = []
        for node in ast.walk(tree):
            review += _review(node)
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
        for what in dict.fromkeys(review):
            reviews.append(f"{REVIEW}cell {cell['id']} {what}")
        for what in dict.fromkeys(found):
            if not any(what == r or what.replace("assigns", "patches") == r for r in review):
                flags.append(f"suspicious: cell {cell['id']} {what}")
    return reviews[:15] + flags[:30 - min(len(reviews), 15)]


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None
