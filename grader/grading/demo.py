"""``make demo``: generate the course, build a sample class of tensor_edf notebooks, grade it.

    python -m grader.grading.demo [--course course] [--workers 2]     (or: backprop demo)

The class, as real ``.ipynb`` files under ``<course>/submitted/<student>/tensor_edf/``:
the source notebook handed in as is, students whose notebooks use correct-but-different
code from ``tests/corpus/correct``, students with the classic bugs of
``tests/corpus/buggy``, and a few hostile ones (an infinite loop in ``backward``,
``os._exit``, patching ``np.allclose``, reading the reference, a corrupt file).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import sample

ASSIGNMENT = "tensor_edf"
REFERENCE_FILE = Path(__file__).resolve().parents[2] / "reference" / "operations.py"
CORRECT = ["sigmoid_via_tanh", "vdot_einsum", "sce_logaddexp", "relu_where_heaviside", "mse_sum_form",
           "mul_unbroadcast_while_loop"]
BUGGY = ["add_bias_grad_not_unbroadcast", "sigmoid_upstream_ignored", "vdot_W_grad_transposed",
         "sce_no_max_subtraction", "mean_missing_1_over_n", "relu_renamed", "exp_assign",
         "tanh_backward_not_implemented", "log_sign_error", "mse_backward_factor_two", "sum_assign",
         "mul_swapped_operands"]
HOSTILE = {
    "hostile-infinite-backward": ("sigmoid-solution", "Sigmoid.backward = lambda self: [None for _ in iter(int, 1)]"),
    "hostile-os-exit": ("mse-solution", "import os\nos._exit(0)"),
    "hostile-patch-allclose": ("add-solution", "np.allclose = lambda *a, **k: True\n"
                                              "np.testing.assert_allclose = lambda *a, **k: None\n"
                                              "Add.backward = lambda self: None"),
    # the reference's real path on this machine, so the attempt is a real one wherever the repo lives
    "hostile-read-reference": ("exp-solution", f"print(open({str(REFERENCE_FILE)!r}).read())"),
}


def build_class(course: Path) -> Path:
    """Write the sample class under ``<course>/submitted``; returns that folder."""
    submitted = course / "submitted"
    shutil.rmtree(submitted, ignore_errors=True)
    nb = sample.as_submitted(sample.source_notebook(course, ASSIGNMENT))

    def put(student: str, notebook: dict) -> None:
        sample.write(notebook, submitted / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")

    put("reference-solution", nb)
    for kind, names in (("correct", CORRECT), ("buggy", BUGGY)):
        for name in names:
            v = sample.with_variant(nb, sample.CORPUS / kind / f"{name}.py")
            if v is not None:
                put(f"{kind}-{name.replace('_', '-')}", v)
    for student, (cell, code) in HOSTILE.items():
        put(student, sample.append_code(nb, cell, code))
    corrupt = submitted / "hostile-corrupt-file" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b'{"cells": [{"cell_type": "code", "source": "import numpy as np\\n')
    return submitted


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m grader.grading.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--course", type=Path, default=Path("course"))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    course = args.course.resolve()

    from grader.authoring.course import generate
    from grader.authoring.template import TemplateError

    from .batch import Request, format_summary, grade, progress_printer
    from .execute import Options
    from grader.runner import Limits

    print(f"1/3 backprop generate {ASSIGNMENT} --course {course}", flush=True)
    try:
        generate([ASSIGNMENT], course)
    except TemplateError as e:
        print(f"demo: backprop generate failed: {e}", file=sys.stderr)
        return 1
    submitted = build_class(course)
    n = sum(1 for _ in submitted.glob(f"*/{ASSIGNMENT}/*.ipynb"))
    print(f"2/3 sample class: {n} notebooks under {submitted}", flush=True)
    print(f"3/3 backprop grade {submitted} --assignment {ASSIGNMENT} --course {course}", flush=True)
    req = Request(path=submitted, assignment=ASSIGNMENT, course=course, workers=args.workers, force=True,
                  options=Options(limits=Limits(timeout=3.0), budget=60.0), progress=progress_printer())
    summary = grade(req)
    print()
    print(format_summary(summary))
    out = req.out_dir
    print()
    print(f"gradebook (CSV):     {out / 'gradebook.csv'}")
    print(f"nbgrader gradebook:  {course / 'gradebook.db'}  (try: cd {course} && nbgrader export)")
    print(f"feedback:            {out / 'feedback'}/<student>.md and .html, "
          f"e.g. {out / 'feedback' / 'buggy-sigmoid-upstream-ignored.html'}")
    print(f"class report:        {out / 'report' / 'index.html'}")
    print(f"per-submission JSON: {out / 'submissions'}/")
    return 1 if summary["grader_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
