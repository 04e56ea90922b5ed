"""The docs describe the repository as it is: ARCHITECTURE.md names only modules that exist
and mentions every package of grader/; nothing refers to files outside the repository; every
template header option and every suite.toml field the code reads is documented."""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from grader.authoring import discover, template
from grader.authoring.template import tomllib

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
ARCHITECTURE = DOCS / "ARCHITECTURE.md"
SEARCHED = ("grader", "reference", "tests", "bench", "assignments", "docs")


def docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md"))) + \
        (REPO / "README.md").read_text(encoding="utf-8")


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def named_modules(text: str) -> list[str]:
    """Paths and module files a page names in code spans: ``grader/x/``, ``a/b.py``, ``name.py``."""
    out = []
    for span in code_spans(text):
        for token in re.findall(r"[\w./<>-]+", span):
            if "<" in token or token.startswith(("http", "course/", "submitted/", "/")):
                continue
            if token.endswith(".py") or re.match(r"^(grader|reference|tests|bench|assignments|docs)/", token):
                out.append(token.rstrip("/.,"))
    return sorted(set(out))


# files `backprop generate` writes into the course (build output, not in the repository)
GENERATED = {"backprop_checks.py", "nbgrader_config.py"}


def exists(name: str) -> bool:
    if name in GENERATED:
        return True
    if "/" in name or name in SEARCHED or name == "grader":
        return (REPO / name).exists()
    return any(next((REPO / top).rglob(name), None) is not None for top in SEARCHED)


def test_every_module_architecture_names_exists():
    names = named_modules(ARCHITECTURE.read_text(encoding="utf-8"))
    assert len(names) >= 30, names
    missing = [n for n in names if not exists(n)]
    assert not missing, missing


def test_every_package_of_the_grader_is_in_architecture():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    packages = sorted(p.name for p in (REPO / "grader").iterdir() if p.is_dir() and any(p.glob("*.py")))
    assert {"checks", "runner", "grading", "authoring", "reports"} <= set(packages)
    assert not [p for p in packages if f"grader/{p}/" not in text]
    for module in (REPO / "grader" / "checks").glob("*.py"):
        if module.name != "__init__.py":
            assert f"`{module.name}`" in text or f"{module.stem}.py" in text, module.name


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
        files = [REPO / line for line in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        files = [p for top in SEARCHED for p in (REPO / top).rglob("*")]
        files += [REPO / "README.md", REPO / "Makefile", REPO / "pyproject.toml"]
    return [f for f in files if f.is_file() and f.suffix in (".md", ".py", ".toml", ".txt", ".cfg", "")]


OUTSIDE = re.compile(r"shared/DESIGN\.md|shared/STYLE\.md|\bDESIGN\.md\b|\bSTYLE\.md\b")


def test_nothing_refers_to_a_design_document_outside_the_repository():
    this = Path(__file__).resolve()
    hits = [f"{f.relative_to(REPO)}:{n}" for f in tracked_files() if f.resolve() != this
            for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if OUTSIDE.search(line)]
    assert not hits, hits


def test_every_relative_link_in_the_docs_resolves():
    for page in [*DOCS.glob("*.md"), REPO / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text(encoding="utf-8")):
            if not target.startswith(("http://", "https://", "mailto:")):
                assert (page.parent / target).resolve().is_relative_to(REPO), (page.name, target)
                assert (page.parent / target).exists(), (page.name, target)


def header_options() -> set[str]:
    """Every cell role, flag and header option key the template reader accepts."""
    tree = ast.parse(Path(template.__file__).read_text(encoding="utf-8"))
    keys = set(template.ROLES) | set(template.FLAGS)
    authoring = Path(template.__file__).parent
    for path in authoring.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            target = None
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                target = node.value
                key = node.slice.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                    and node.args and isinstance(node.args[0], ast.Constant):
                target = node.func.value
                key = node.args[0].value
            if target is not None and ast.unparse(target).endswith("options") and isinstance(key, str):
                keys.add(key)
    assert tree and {"from", "keep", "id", "experiment", "markdown", "solution"} <= keys
    return keys


@pytest.mark.parametrize("option", sorted(header_options()))
def test_every_template_option_is_documented(option):
    words = {w for span in code_spans(docs_text()) for w in re.findall(r"[\w-]+", span)}
    assert option in words, option


def suite_fields() -> set[str]:
    """Every key a suite.toml uses (top level, tests, their visible/hidden tables, and the
    inline-table markers inside a function test's cases: ``{ random = [...] }``) and every
    parameter a check kind's specs builder reads from those tables (``params.get("...")``)."""
    keys: set[str] = set()
    for name in discover():
        with open(REPO / "assignments" / name / "suite.toml", "rb") as f:
            suite = tomllib.load(f)
        keys |= set(suite) - {"test"}
        for test in suite.get("test", []):
            keys |= set(test)
            for part in ("visible", "hidden"):
                params = test.get(part) or {}
                keys |= set(params)
                for case in params.get("cases", []):
                    keys |= {k for v in case.values() if isinstance(v, dict) for k in v}
    for path in (REPO / "grader" / "checks").glob("*.py"):
        builders = [f for f in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(f, ast.FunctionDef) and "specs" in f.name]
        for node in (n for f in builders for n in ast.walk(f)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in ("params", "p") \
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                keys.add(node.args[0].value)
    assert {"id", "points", "check", "target", "visible", "hidden", "seeds", "shapes"} <= keys
    return keys


@pytest.mark.parametrize("field", sorted(suite_fields()))
def test_every_suite_field_is_documented(field):
    words = {w for span in code_spans(ARCHITECTURE.read_text(encoding="utf-8")) for w in re.findall(r"\w+", span)}
    assert field in words, field
