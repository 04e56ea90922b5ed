"""``backprop export gradescope A --out autograder.zip``: a Gradescope autograder bundle.

Gradescope unzips the bundle into ``<root>/source``, runs ``setup.sh`` once when it builds
the image, then ``run_autograder`` per submission, with the student's files in
``<root>/submission`` and the verdict expected in ``<root>/results/results.json``. The root
is ``/autograder`` on Gradescope; ``AUTOGRADER_ROOT`` moves it (local runs, our tests).

What the bundle holds: this project's code (``grader/``, ``reference/``), the one
assignment's template and suite, ``pyproject.toml``, the two scripts, and the course's
hidden-seed secret (``grader.grading.seeds``) as ``backprop-course/.backprop/secret``, so each
student and each version of a notebook faces its own hidden cases, as with ``backprop grade``. The grader's code
and the hidden suite stay in ``<root>/source`` (made root-only by ``run_autograder``);
student code runs in the grader's child as another uid and cannot read them. Gradescope
runs containers as root without user namespaces, so bubblewrap is usually unusable there
and grading runs in the rlimits-only mode, which the output says.

The zip is reproducible: fixed member order, timestamps and modes.
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from grader.authoring import assignment as authoring
from grader.grading import seeds

REPO = Path(__file__).resolve().parents[2]
PROJECT = "backprop-course"          # the project's folder inside <root>/source
CODE_DIRS = ("grader", "reference")
EPOCH = (2020, 1, 1, 0, 0, 0)        # every member's timestamp, for byte-identical bundles

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# A virtual environment with the grader's dependencies (not the grader itself: its code and
# the hidden suite stay in source/, which run_autograder makes readable by root only).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
if ! python3 -c 'import venv, ensurepip' 2>/dev/null && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
fi
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
"$ROOT/venv/bin/python" -m pip install --quiet "$ROOT/source/backprop-course"
# The grader's own code is run from source/ (root-only); keep only the dependencies here.
"$ROOT/venv/bin/python" -m pip uninstall --quiet -y backprop-course
chmod -R a+rX "$ROOT/venv"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this per submission, as root. Grades the notebook in submission/ and
# writes results/results.json; whatever happens, a results.json is written.
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${BACKPROP_PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
# Student code runs as another uid: the grader, the reference and the hidden suite are root-only.
chmod 0711 "$ROOT" 2>/dev/null
chmod -R go-rwx "$ROOT/source" 2>/dev/null
cd "$ROOT/source" || exit 0
"$PY" -I -c \
  'import sys; sys.path.insert(0, sys.argv[1]); from grader.export.gradescope_run import main; sys.exit(main(sys.argv[2:]))' \
  "$ROOT/source/backprop-course" --root "$ROOT" --assignment "$(cat "$ROOT/source/ASSIGNMENT")"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
  printf '{"score": 0, "output": "The autograder failed before it could grade (exit %s). Please tell your course staff.", "tests": []}\n' "$status" \
    > "$ROOT/results/results.json"
fi
exit 0
"""


SECRET_MEMBER = f"{PROJECT}/{seeds.SECRET_DIR}/{seeds.SECRET_FILE}"


def _files(assignment: str, secret: bytes | None = None) -> list[tuple[str, bytes, int]]:
    """(name in the zip, bytes, mode) of every member, sorted by name."""
    members: list[tuple[str, bytes, int]] = [
        ("setup.sh", SETUP_SH.encode(), 0o755),
        ("run_autograder", RUN_AUTOGRADER.encode(), 0o755),
        ("ASSIGNMENT", assignment.encode() + b"\n", 0o644),
    ]
    if secret is not None:  # inside the code folder: root-only and private to the sandbox, as the suite
        members.append((SECRET_MEMBER, secret.hex().encode() + b"\n", 0o600))
    for name in ("pyproject.toml", "README.md"):
        members.append((f"{PROJECT}/{name}", (REPO / name).read_bytes(), 0o644))
    for top in CODE_DIRS:
        for p in sorted((REPO / top).rglob("*.py")):
            if "__pycache__" not in p.parts:
                members.append((f"{PROJECT}/{p.relative_to(REPO).as_posix()}", p.read_bytes(), 0o644))
    adir = authoring.ASSIGNMENTS / assignment
    for p in sorted(adir.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            members.append((f"{PROJECT}/assignments/{assignment}/{p.relative_to(adir).as_posix()}",
                            p.read_bytes(), 0o644))
    return sorted(members)


def build_bundle(assignment: str, course: Path | None = None) -> bytes:
    """The autograder zip for ``assignment``, as bytes (reproducible byte for byte), with the
    hidden-seed secret of ``course`` when it has one."""
    if assignment not in authoring.discover():
        raise ValueError(f"no assignment {assignment!r} (have: {', '.join(authoring.discover())})")
    authoring.load_assignment(assignment)  # a broken template fails here, not on Gradescope
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in _files(assignment, seeds.load_secret(course)):
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def export(assignment: str, out: Path, course: Path | None = None) -> Path:
    out = Path(out)
    data = build_bundle(assignment, course)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold the course secret
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return out


def register(export_subparsers) -> None:
    """``backprop export gradescope``: a member of the ``export`` group."""
    p = export_subparsers.add_parser(
        "gradescope", help="a Gradescope autograder zip for one assignment",
        description="Write a Gradescope autograder bundle (setup.sh, run_autograder, the grader and "
                    "the assignment's hidden suite). Upload it as the assignment's autograder; "
                    "students submit their notebook.")
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--course", type=Path, default=Path("course"),
                   help="course directory; the default output is <course>/export/<A>-gradescope.zip")
    p.add_argument("--out", type=Path, default=None, help="where to write the zip")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import sys

    out = args.out or Path(args.course) / "export" / f"{args.assignment}-gradescope.zip"
    try:
        export(args.assignment, out, args.course)
    except (ValueError, seeds.SecretError) as e:
        print(f"backprop export gradescope: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB): upload it as the autograder of "
          f"{args.assignment} on Gradescope")
    if seeds.load_secret(args.course) is None:
        print(f"backprop export gradescope: warning: {args.course} has no course secret "
              f"({seeds.secret_path(args.course)}): every student will face the suite's own hidden cases; "
              "run `backprop generate` on the course, then export again", file=sys.stderr)
    return 0
