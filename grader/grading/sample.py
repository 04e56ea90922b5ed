"""Sample submissions: real ``.ipynb`` files built from the source notebook, for the demo,
the benchmark and the tests.

A "student" is the source notebook (solutions included, hidden tests stripped as in the
release) with some solution cells replaced by corpus variants (``tests/corpus``) and,
for hostile students, extra code.
"""
from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"
_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


def load_notebook(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def source_notebook(course: Path, assignment: str) -> dict:
    return load_notebook(Path(course) / "source" / assignment / f"{assignment}.ipynb")


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def as_submitted(nb: dict) -> dict:
    """The source notebook as a student would hand it in: hidden tests gone, no outputs."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = _HIDDEN.sub("", _src(cell))
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def _defined(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def _keep_others(source: str, drop: set[str]) -> str:
    """The cell's top-level statements except the definitions named in ``drop``."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in drop:
            continue
        start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        out.append("".join(lines[start - 1:node.end_lineno]))
    return "\n\n".join(out)


def with_variant(nb: dict, variant: Path) -> dict | None:
    """``nb`` with the solution cell(s) defining the variant's names replaced by the variant;
    None when the notebook has no solution cell for them (variant of another assignment)."""
    import sys

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.corpus import notebook_source, read_expect

    code = notebook_source(variant)
    names = set(_defined(code))
    expect = read_expect(variant) or {}
    if expect.get("diagnosis") == "missing":
        names.add(expect["component"])
    nb = copy.deepcopy(nb)
    hit = False
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] != "code" or not meta.get("solution"):
            continue
        defined = set(_defined(_src(cell)))
        if defined & names:
            rest = _keep_others(_src(cell), names)
            cell["source"] = (rest + "\n\n\n" if rest.strip() else "") + (code if not hit else "")
            hit = True
    return nb if hit else None


def append_code(nb: dict, cell_id: str, code: str) -> dict:
    """``code`` appended to the cell ``cell_id`` (a student editing a solution cell)."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell.get("id") == cell_id:
            cell["source"] = _src(cell) + "\n\n" + code
            return nb
    raise KeyError(cell_id)


def add_cell(nb: dict, code: str, after: str | None = None, cell_id: str = "student-added") -> dict:
    """A new code cell (a student adding a cell) after ``after`` (default: at the end)."""
    nb = copy.deepcopy(nb)
    cell = {"cell_type": "code", "id": cell_id, "metadata": {}, "source": code, "outputs": [],
            "execution_count": None}
    idx = len(nb["cells"])
    if after is not None:
        idx = next(i for i, c in enumerate(nb["cells"]) if c.get("id") == after) + 1
    nb["cells"].insert(idx, cell)
    return nb


def write(nb: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def corpus(kind: str) -> list[Path]:
    return sorted(p for p in (CORPUS / kind).glob("*.py") if not p.name.startswith("_"))
