"""One generated nbgrader course per test session, a kernelspec pinned to this interpreter.

The course is generated assignment by assignment, so a template that does not build
fails its own tests (with the generator's message) without hiding the others.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from grader.authoring import TemplateError, discover, generate

ASSIGNMENTS = discover()
KERNEL = "python3"
STUDENT_FULL, STUDENT_ZERO = "full_marks", "release_as_is"


@pytest.fixture(scope="session")
def jupyter_env(tmp_path_factory):
    """Kernels and scripts of this virtualenv only: a ``python3`` kernelspec whose argv is
    this interpreter, first on JUPYTER_PATH; this interpreter's bin first on PATH (nbgrader
    shells out to ``alembic``). Nothing depends on a user-level kernel."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "backprop-course test kernel", "language": "python"}))
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "PATH", "PYDEVD_DISABLE_FILE_VALIDATION")}
    os.environ["JUPYTER_PATH"] = str(root)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), saved["PATH"] or ""])
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    yield dict(os.environ)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@dataclass
class Course:
    path: Path
    errors: dict = field(default_factory=dict)
    snapshot: dict = field(default_factory=dict)  # relative path -> bytes, right after generation
    autograde: threading.Thread | None = None

    def require(self, name: str) -> None:
        if name in self.errors:
            pytest.fail(f"backprop generate {name} failed: {self.errors[name]}", pytrace=False)


def snapshot(course: Path) -> dict:
    return {str(p.relative_to(course)): p.read_bytes()
            for sub in ("source", "release") for p in sorted((course / sub).rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def course(tmp_path_factory, jupyter_env) -> Course:
    """The generated course; nbgrader autograde starts on it in the background at once
    (it is the slowest part: it executes every notebook twice), see ``autograded``."""
    c = Course(tmp_path_factory.mktemp("course"))
    for name in ASSIGNMENTS:
        try:
            generate([name], c.path)
        except TemplateError as e:
            c.errors[name] = e
    c.snapshot = snapshot(c.path)
    c.autograde = threading.Thread(target=_autograde_all, args=(c, jupyter_env), daemon=True)
    c.autograde.start()
    return c


def run_notebook(path: Path, workdir: Path, *, allow_errors: bool, extra_cells=()) -> nbformat.NotebookNode:
    """Execute a notebook in a real kernel, in ``workdir`` (so ``backprop_checks`` imports)."""
    nb = nbformat.read(path, as_version=4)
    for source in extra_cells:
        nb.cells.append(nbformat.v4.new_code_cell(source))
    NotebookClient(nb, timeout=600, kernel_name=KERNEL, allow_errors=allow_errors,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def copy_assignment(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return dst


def _autograde_all(course: Course, env: dict) -> None:
    """``nbgrader autograde`` on two submissions per assignment: the source notebook
    (solutions in place) and the release notebook untouched."""
    for name in ASSIGNMENTS:
        if name in course.errors:
            continue
        copy_assignment(course.path / "source" / name, course.path / "submitted" / STUDENT_FULL / name)
        copy_assignment(course.path / "release" / name, course.path / "submitted" / STUDENT_ZERO / name)
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", name, "--force"],
                              cwd=course.path, env=env, capture_output=True, text=True)
        if proc.returncode:
            course.errors[f"autograde:{name}"] = proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def autograded(course) -> Course:
    course.autograde.join()
    return course
