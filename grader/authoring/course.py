"""``backprop generate``: assignments -> nbgrader course (source, gradebook, release).

A pipeline of small named steps, nbgrader-preprocessor style. Each step takes the
``Build`` (course directory, assignment, notebook so far) and does one thing, so a
reader sees the whole flow in ``STEPS`` and a failure names its step.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .assignment import ASSIGNMENTS, Assignment, discover, load_assignment
from .checks import check_targets, run_notebooks
from .template import COURSE_ID, TemplateError, load_suite

CHECKS_MODULE = "backprop_checks.py"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python"}
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


@dataclass
class Build:
    course: Path
    name: str
    course_id: str = COURSE_ID
    root: Path = ASSIGNMENTS
    assignment: Assignment | None = None
    notebook: nbformat.NotebookNode | None = None
    log: list[str] = field(default_factory=list)

    @property
    def source_dir(self) -> Path:
        return self.course / "source" / self.name

    @property
    def release_dir(self) -> Path:
        return self.course / "release" / self.name


# -- steps ---------------------------------------------------------------------------------

def load(b: Build) -> None:
    """Template + suite -> cells with roles, ids and solution/hidden markers."""
    b.assignment = load_assignment(b.name, b.root)


def build_notebook(b: Build) -> None:
    """Cells -> an nbformat 4.5 notebook: stable ids, nbgrader metadata, no outputs."""
    cells = []
    for c in b.assignment.cells:
        if c.cell_type == "markdown":
            cell = nbformat.v4.new_markdown_cell(c.source)
        else:
            cell = nbformat.v4.new_code_cell(c.source)
        cell.id = c.id
        if c.nbgrader:
            cell.metadata["nbgrader"] = c.nbgrader
        if c.role == "experiment":  # a mark for readers; grading trusts the template, not this
            cell.metadata["backprop"] = {"experiment": True}
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    nbformat.validate(nb)
    b.notebook = nb


def write_source(b: Build) -> None:
    """The nbgrader source notebook, sorted JSON, ending in a newline."""
    b.source_dir.mkdir(parents=True, exist_ok=True)
    _write_notebook(b.notebook, b.source_dir / f"{b.name}.ipynb")


def write_checks_module(b: Build) -> None:
    """``backprop_checks.py`` beside the notebook: the checks of the kinds its suite uses."""
    (b.source_dir / CHECKS_MODULE).write_text(checks_module_text(suite_kinds(b)), encoding="utf-8")


def write_config(b: Build) -> None:
    """``nbgrader_config.py``: course id and gradebook url; nothing time-dependent."""
    b.course.mkdir(parents=True, exist_ok=True)
    (b.course / "nbgrader_config.py").write_text(config_text(b.course, b.course_id), encoding="utf-8")


def release(b: Build) -> None:
    """nbgrader's own ``generate_assignment``: stubs, hidden tests cleared, gradebook entries."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(b.course)).load_config()
    coursedir = CourseDirectory(config=config, root=str(b.course))
    api = NbGraderAPI(coursedir=coursedir, config=config)
    with scripts_on_path():
        result = api.generate_assignment(b.name, force=True, create=True)
    b.log.append(result.get("log", ""))
    if not result["success"]:
        raise TemplateError(f"nbgrader generate_assignment {b.name} failed:\n"
                            f"{result.get('error', '')}\n{result.get('log', '')}")


def normalise_release(b: Build) -> None:
    """Rewrite the release notebook in the same canonical form as the source.

    nbgrader writes through nbconvert (``indent=1``, sorted keys) and adds per-cell
    checksums and ``cell_type``, all derived from content; re-serialising makes the
    byte form ours regardless of the nbconvert version.
    """
    path = b.release_dir / f"{b.name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    _write_notebook(nb, path)


STEPS = [load, check_targets, build_notebook, write_config, write_source, write_checks_module, release,
         normalise_release]
# ``backprop generate`` then runs both notebooks (``verify``): full marks, clean failures
VERIFY_STEPS = [run_notebooks]


# -- entry points ------------------------------------------------------------------------

def generate(names: list[str] | None = None, course: Path | str = "course", *,
             course_id: str = COURSE_ID, root: Path = ASSIGNMENTS, steps=None, verify: bool = False) -> list[Build]:
    """Run the pipeline for each assignment (all found under ``root`` when none named);
    ``verify`` adds ``VERIFY_STEPS`` (the command line's default)."""
    course = Path(course).resolve()
    names = list(names) if names else discover(root)
    if not names:
        raise TemplateError(f"no assignments found under {root}")
    missing = [n for n in names if n not in discover(root)]
    if missing:
        raise TemplateError(f"no assignment {', '.join(missing)} under {root} "
                            f"(found: {', '.join(discover(root)) or 'none'})")
    from grader.grading.seeds import ensure_secret

    ensure_secret(course)  # the course's hidden-seed secret, once; outside source/ and release/
    builds = []
    for name in names:
        b = Build(course=course, name=name, course_id=course_id, root=root)
        for step in steps or (STEPS + VERIFY_STEPS if verify else STEPS):
            step(b)
        builds.append(b)
    return builds


def precheck(names: list[str] | None = None, *, root: Path = ASSIGNMENTS) -> None:
    """The quick checks of ``generate`` alone (load, graded targets declared), writing nothing:
    the command line runs them before the audit, so a missing piece is named in seconds."""
    for name in list(names) if names else discover(root):
        if name not in discover(root):
            continue  # ``generate`` names the unknown assignment
        b = Build(course=Path("."), name=name, course_id=COURSE_ID, root=root)
        for step in (load, check_targets):
            step(b)


def checks_module_text(kinds: Iterable[str] | None = None) -> str:
    """The public checks as shipped to students: the bundle of ``kinds`` (default: every
    kind), checked to import only the standard library and NumPy."""
    from grader.checks.bundle import BundleError, bundle
    try:
        text = bundle(kinds)
    except BundleError as e:
        raise TemplateError(f"the public checks cannot be bundled: {e}") from None
    names = ", ".join(dict.fromkeys(kinds)) if kinds is not None else "all"
    header = (f"# Generated by `backprop generate` from grader/checks/ (check kinds: {names}); do not edit.\n"
              "# The checks behind this notebook's visible tests.\n")
    return header + text


def suite_kinds(b: Build) -> list[str]:
    """The check kinds the assignment's suite uses, in suite order."""
    return list(dict.fromkeys(t.check for t in b.assignment.tests))


def assignment_kinds(name: str, root: Path = ASSIGNMENTS) -> list[str]:
    """The check kinds assignment ``name``'s suite uses (what its bundle holds)."""
    return list(dict.fromkeys(t.check for t in load_suite(Path(root) / name / "suite.toml", name)))


def config_text(course: Path, course_id: str) -> str:
    return (
        "# Generated by `backprop generate`; regenerate rather than edit.\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {course_id!r}\n"
        # the gradebook beside this file, wherever the course folder is copied or moved
        "import os  # noqa: E402\n"
        "c.CourseDirectory.db_url = 'sqlite:///' + os.path.join(os.path.dirname(os.path.abspath(__file__)), "
        "'gradebook.db')\n"
        f"c.ClearSolutions.code_stub = {{'python': {CODE_STUB!r}}}\n"
        "c.ClearSolutions.enforce_metadata = True\n"
        "# autograding runs whole notebooks (mlp_training trains a model): allow slow cells\n"
        "c.Execute.timeout = 600\n"
    )


@contextlib.contextmanager
def scripts_on_path():
    """Put this interpreter's scripts first on PATH: nbgrader's gradebook shells out to
    ``alembic``, which is only on PATH when the virtualenv is activated."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), old])
    try:
        yield
    finally:
        os.environ["PATH"] = old


def _write_notebook(nb, path: Path) -> None:
    nbformat.validate(nb)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def clean(course: Path, name: str) -> None:
    """Remove an assignment's generated source and release folders."""
    for sub in ("source", "release"):
        shutil.rmtree(Path(course) / sub / name, ignore_errors=True)
