"""Hostile and broken submissions, graded end to end through ``grader.grading.grade``.

ONE table: each row is a real ``.ipynb`` (built from the course's source notebook), what it
does, and what the grade must say. Every hostile notebook starts from BASE, a notebook
with two buggy components (Sigmoid ignores the upstream gradient, Add does not sum a
bias gradient), so a trick that *gained* points would show: no test may earn more points
than in BASE. Many tricks carry an oracle: if the attack worked (a file was readable, a
socket opened, a write landed), the cell swaps in a correct Sigmoid and the grade would go
up. The batch as a whole must finish, with every submission graded.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grader.grading import sample
from grader.grading.batch import Request, grade
from grader.grading.execute import Options
from grader.runner import Limits, available_isolation

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "tensor_edf"
HOST_MARKER = Path("/tmp/backprop-grading-hostile-marker")

# A correct Sigmoid: what a successful attack would swap in.
FIX = '''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = 0.5 * (1 + np.tanh(0.5 * self.x.value))

    def backward(self):
        self.x.grad += self.grad * self.value * (1 - self.value)
'''


def _if_it_works(attempt: str) -> str:
    """Student code that becomes correct only if ``attempt`` succeeds inside the sandbox."""
    body = "\n".join("    " + line for line in attempt.strip().splitlines())
    fix = "\n".join("    " + line for line in FIX.strip().splitlines())
    return f"try:\n{body}\n{fix}\nexcept BaseException:\n    pass\n"


def read_attempt(path: str) -> str:
    return _if_it_works(f"assert len(open({path!r}, 'rb').read()) > 0")


LOOP_BACKWARD = "def _loop(self):\n    while True:\n        pass\nSigmoid.backward = _loop\n"
STUBBORN_LOOP = ("def _loop(self):\n    while True:\n        try:\n            while True:\n                pass\n"
                 "        except BaseException:\n            pass\nSigmoid.backward = _loop\n")
FORGED = '''
class _Forged:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __array__(self, *a, **k): raise TypeError("no")
    def __float__(self): return 0.0
    def __abs__(self): return 0.0
    def __sub__(self, other): return self
    def __lt__(self, other): return True
    def __le__(self, other): return True

def _fwd(self):
    self.value = _Forged()
Sigmoid.forward = _fwd
'''
PICKLE = f'''
import pickle, os

class _Payload:
    def __reduce__(self):
        return (os.system, ("touch {HOST_MARKER}",))

def _fwd(self):
    self.value = np.array([_Payload()], dtype=object)
def _bwd(self):
    self.x.grad = np.frombuffer(pickle.dumps(_Payload()), dtype=np.uint8)
Sigmoid.forward = _fwd
Sigmoid.backward = _bwd
'''
PATCH_NUMPY = '''
np.allclose = lambda *a, **k: True
np.isclose = lambda *a, **k: np.True_
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_almost_equal = lambda *a, **k: None
'''
PATCH_BUILTINS = '''
import builtins
builtins.abs = lambda x: 0
builtins.max = lambda *a, **k: 0
builtins.AssertionError = type("AssertionError", (Exception,), {})
builtins.print = lambda *a, **k: None
'''
TRACE = '''
import sys
def _tracer(frame, event, arg):
    # flip any local that looks like a verdict, in every frame of the process
    for k in ("passed", "ok", "score", "good"):
        if k in frame.f_locals:
            frame.f_locals[k] = True
    return _tracer
sys.settrace(_tracer)
sys.setprofile(lambda *a: None)
'''
AST_TRANSFORMER = '''
import ast, builtins
class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
    def visit_Compare(self, node):
        return ast.Constant(True)
_compile = builtins.compile
def _compile_without_checks(src, *a, **k):
    if isinstance(src, str):
        src = ast.fix_missing_locations(_NoAsserts().visit(ast.parse(src)))
    return _compile(src, *a, **k)
builtins.compile = _compile_without_checks
'''


def _raise_in_backward(stmt: str) -> str:
    return f"import sys, os\ndef _bwd(self):\n    {stmt}\nSigmoid.backward = _bwd\n"


def _set_meta(nb: dict, cell_id: str, **meta) -> dict:
    nb = json.loads(json.dumps(nb))
    for c in nb["cells"]:
        if c.get("id") == cell_id:
            c.setdefault("metadata", {}).setdefault("nbgrader", {}).update(meta)
    return nb


def _edit(nb: dict, cell_id: str, source: str) -> dict:
    nb = json.loads(json.dumps(nb))
    for c in nb["cells"]:
        if c.get("id") == cell_id:
            c["source"] = source
    return nb


# name -> (how to build the notebook from BASE, expectations)
# builders take (base_nb, paths) and return a dict notebook or raw bytes.
# expectations: status, diag {test: code}, cell {cell id: status}, note / flag substrings, zero
CASES = {
    "corrupt_json": (lambda b, p: json.dumps(b).encode()[:5000],
                     {"status": "error", "zero": True, "error": "not valid JSON"}),
    "not_a_notebook": (lambda b, p: b'{"hello": "world", "answer": 42}',
                       {"status": "error", "zero": True, "error": "not a Jupyter notebook"}),
    "binary_garbage": (lambda b, p: os.urandom(3000) + b"\xff\xfe",
                       {"status": "error", "zero": True, "error": "not"}),
    "empty_notebook": (lambda b, p: {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []},
                       {"status": "graded", "zero": True, "diag": {"sigmoid": "missing", "add": "missing"}}),
    "wrong_nbformat_version": (lambda b, p: dict(b, nbformat=5),
                               {"status": "error", "zero": True, "error": "unsupported notebook format"}),
    "syntax_error_in_one_cell": (lambda b, p: sample.append_code(b, "relu-solution", "def broken(:\n    pass"),
                                 {"diag": {"relu": "missing"}, "cell": {"relu-solution": "error"},
                                  "unchanged": ["vdot", "mse", "exp"]}),
    "renamed_class": (lambda b, p: sample.with_variant(b, sample.CORPUS / "buggy" / "relu_renamed.py"),
                      {"diag": {"relu": "missing"}}),
    "infinite_loop_at_import": (lambda b, p: sample.add_cell(b, "while True:\n    pass\n", after="mse-solution"),
                                {"cell": {"added-" : "timeout"}, "unchanged": ["sigmoid", "vdot", "mse"]}),
    "infinite_loop_in_backward": (lambda b, p: sample.append_code(b, "sigmoid-solution", LOOP_BACKWARD),
                                  {"diag": {"sigmoid": "timeout"}, "unchanged": ["vdot", "mse"]}),
    "loop_that_swallows_the_timeout": (lambda b, p: sample.append_code(b, "sigmoid-solution", STUBBORN_LOOP),
                                       {"diag": {"sigmoid": "timeout"}, "unchanged": ["vdot", "mse"]}),
    "memory_bomb_at_import": (lambda b, p: sample.add_cell(b, "hog = bytearray(8 << 30)\n", after="mse-solution"),
                              {"cell": {"added-": "error"}, "unchanged": ["sigmoid", "vdot", "mse"]}),
    "memory_bomb_in_backward": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", "def _bwd(self):\n    hog = [bytearray(1 << 26) for _ in range(1000)]\nSigmoid.backward = _bwd\n"),
        {"diag": {"sigmoid": ("exception", "crashed", "timeout")}, "unchanged": ["vdot", "mse"]}),
    "fork_bomb": (lambda b, p: sample.add_cell(
        b, "import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        after="mse-solution"), {"unchanged": ["vdot", "mse"]}),
    "sys_exit_in_cell": (lambda b, p: sample.append_code(b, "exp-solution", "import sys\nsys.exit(0)"),
                         {"cell": {"exp-solution": "error"}, "unchanged": ["exp", "vdot"]}),
    "os_exit_in_cell": (lambda b, p: sample.append_code(b, "mse-solution", "import os\nos._exit(0)"),
                        {"cell": {"mse-solution": "crashed"}, "diag": {"mse": "missing"},
                         "note": "killed the process", "unchanged": ["vdot", "exp"]}),
    "raise_systemexit_in_backward": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", _raise_in_backward("raise SystemExit(0)")),
        {"diag": {"sigmoid": "exception"}, "unchanged": ["vdot"]}),
    "os_exit_in_backward": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", _raise_in_backward("os._exit(0)")),
        {"diag": {"sigmoid": "crashed"}, "unchanged": ["vdot", "mse"]}),
    "keyboard_interrupt_in_backward": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", _raise_in_backward("raise KeyboardInterrupt")),
        {"unchanged": ["vdot", "mse"]}),
    "print_100MB_at_import": (lambda b, p: sample.add_cell(
        b, "for _ in range(100):\n    print('x' * (1 << 20))\n", after="mse-solution"),
        {"flag": "output truncated", "unchanged": ["sigmoid", "vdot", "mse"]}),
    "print_flood_in_backward": (lambda b, p: sample.append_code(
        b, "add-solution", "_b = Add.backward\ndef _loud(self):\n    print('y' * (1 << 20))\n    _b(self)\n"
                           "Add.backward = _loud\n"),
        {"diag": {"add": "output_limit"}, "unchanged": ["vdot"]}),
    "read_reference_absolute": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", read_attempt(str(REPO / "reference" / "operations.py"))), {"unchanged": ["sigmoid"]}),
    "read_reference_relative": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", _if_it_works(
            "import glob\nassert glob.glob('../**/reference/operations.py', recursive=True) or "
            "open('../../../work/main/reference/operations.py').read()")), {"unchanged": ["sigmoid"]}),
    "read_hidden_suite": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", read_attempt(str(REPO / "assignments" / ASSIGNMENT / "suite.toml"))),
        {"unchanged": ["sigmoid"]}),
    "read_hidden_checks": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", read_attempt(str(REPO / "grader" / "checks" / "hidden.py"))),
        {"unchanged": ["sigmoid"]}),
    "read_gradebook": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", read_attempt(str(p["course"] / "gradebook.db"))), {"unchanged": ["sigmoid"]}),
    "read_other_student": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", read_attempt(str(p["other"]))), {"unchanged": ["sigmoid"]}),
    "read_other_student_relative": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", read_attempt(os.path.relpath(p["other"], "/tmp"))), {"unchanged": ["sigmoid"]}),
    "write_outside_scratch": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", _if_it_works(f"open({str(HOST_MARKER)!r}, 'w').write('pwned')\n"
                                            f"open({str(REPO / 'pwned.txt')!r}, 'w').write('pwned')")),
        {"unchanged": ["sigmoid"]}),
    "network_socket": (lambda b, p: sample.append_code(
        b, "sigmoid-solution", _if_it_works("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=0.5)")),
        {"unchanged": ["sigmoid"]}),
    "patch_numpy_allclose_and_testing": (lambda b, p: sample.append_code(b, "sigmoid-solution", PATCH_NUMPY),
                                         {}),
    "patch_builtins": (lambda b, p: sample.add_cell(b, PATCH_BUILTINS, after="mse-solution"), {}),
    "settrace_trick": (lambda b, p: sample.add_cell(b, TRACE, after="mse-solution"), {}),
    "ast_transformer_trick": (lambda b, p: sample.add_cell(b, AST_TRANSFORMER, after="add-solution"), {}),
    "forged_eq_object": (lambda b, p: sample.append_code(b, "sigmoid-solution", FORGED),
                         {"diag": {"sigmoid": ("exception", "forward_wrong", "protocol_error")}}),
    "pickle_payload_in_returned_data": (lambda b, p: sample.append_code(b, "sigmoid-solution", PICKLE),
                                        {"diag": {"sigmoid": ("exception", "forward_wrong", "protocol_error")}}),
    "edit_given_cell": (lambda b, p: _edit(b, "edf-core", "def Backward(loss):\n    pass\n"),
                        {"note": "given cell edf-core was edited", "unchanged": ["backward_mlp2"]}),
    "mark_own_cell_as_test_with_points": (lambda b, p: _set_meta(
        sample.add_cell(b, "assert True\n", after="mse-solution", cell_id="my-test"),
        "my-test", grade=True, grade_id="test_bonus", points=100), {}),
    "inflate_points_of_test_cell": (lambda b, p: _set_meta(b, "test_sigmoid", points=1000), {}),
    "submitted_test_cell_raises": (lambda b, p: _edit(b, "test_vdot", "raise SystemExit('tests are not run')"), {}),
    "replace_the_probe_module": (lambda b, p: sample.add_cell(
        b, "import sys, types\n_m = types.ModuleType('backprop_checks')\n"
           "_m.probe = lambda ns, spec: {'value': 0.0, 'grads': [], 'passed': True}\n"
           "sys.modules['backprop_checks'] = _m\n", after="mse-solution"), {}),
    "relabel_solution_as_given": (lambda b, p: _set_meta(b, "sigmoid-solution", solution=False, locked=True), {}),
}


def _base(nb: dict) -> dict:
    for name in ("sigmoid_upstream_ignored", "add_bias_grad_not_unbroadcast"):
        nb = sample.with_variant(nb, sample.CORPUS / "buggy" / f"{name}.py")
    return nb


@pytest.fixture(scope="module")
def graded(course, submitted_nb, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    cls = root / "class"
    base = _base(submitted_nb)
    other = sample.write(submitted_nb, cls / "zz-other-student.ipynb")
    paths = {"course": course, "other": other}
    sample.write(base, cls / "BASE.ipynb")
    for name, (build, _) in CASES.items():
        nb = build(base, paths)
        target = cls / f"{name}.ipynb"
        if isinstance(nb, bytes):
            target.write_bytes(nb)
        else:
            sample.write(nb, target)
    HOST_MARKER.unlink(missing_ok=True)
    opts = Options(limits=Limits(timeout=1.0, memory_bytes=768 << 20, cpu_seconds=20, nproc=16,
                                 output_bytes=16 << 10), budget=30.0, max_restarts=2, test_output_bytes=256 << 10)
    summary = grade(Request(path=cls, assignment=ASSIGNMENT, course=course, out=root / "out", workers=2,
                            options=opts, nbgrader=False))
    records = {r["student"]: r for r in json.loads((root / "out" / "results.json").read_text())}
    return summary, records


def test_the_batch_grades_everyone(graded):
    summary, records = graded
    assert not summary["grader_errors"]
    assert set(CASES) | {"BASE", "zz-other-student"} == set(records)
    assert records["zz-other-student"]["total"] == records["zz-other-student"]["max"]
    assert 0 < records["BASE"]["total"] < records["BASE"]["max"]


# What the rlimits-only fallback does not claim to stop (README, "Security"): it has no network
# namespace, and it keeps only this installation's reference, suites, course and submissions
# from the children, not another world-readable copy elsewhere on the machine (/work/main).
NEEDS_BWRAP = {"network_socket": "no network isolation", "read_reference_relative": "another copy of the reference"}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile(graded, name):
    summary, records = graded
    if name in NEEDS_BWRAP and summary["isolation"] != "bwrap":
        pytest.skip(f"rlimits-only fallback: {NEEDS_BWRAP[name]}")
    rec, base = records[name], records["BASE"]
    expect = CASES[name][1]
    points = {t["id"]: t["points"] for t in rec["tests"]}
    base_points = {t["id"]: t["points"] for t in base["tests"]}
    # no point its numbers did not earn: never more than the same notebook without the trick
    for tid, p in points.items():
        assert p <= base_points[tid] + 1e-9, f"{name}: {tid} earned {p} > {base_points[tid]}"
    assert rec["total"] <= base["total"] + 1e-9
    assert rec["max"] == base["max"]  # edited metadata does not change the points
    for t in rec["tests"]:  # every verdict says something
        assert t["result"]["passed"] or t["result"]["message"]
    if "status" in expect:
        assert rec["status"] == expect["status"], rec.get("error")
    if "error" in expect:
        assert expect["error"] in rec["error"]
    if expect.get("zero"):
        assert rec["total"] == 0
    for tid, codes in expect.get("diag", {}).items():
        codes = codes if isinstance(codes, tuple) else (codes,)
        got = next(t["result"] for t in rec["tests"] if t["id"] == tid)
        assert not got["passed"] and got["diagnosis"] in codes, (tid, got)
    for cid, status in expect.get("cell", {}).items():
        cells = [c for c in rec["cells"] if c["id"].startswith(cid)]
        assert cells and cells[0]["status"] == status, rec["cells"]
    for tid in expect.get("unchanged", []):
        assert points[tid] == base_points[tid], (tid, next(t for t in rec["tests"] if t["id"] == tid))
    if "note" in expect:
        assert any(expect["note"] in n for n in rec["notes"]), rec["notes"]
    if "flag" in expect:
        assert any(expect["flag"] in f for f in rec["flags"]), rec["flags"]


def test_nothing_escaped_to_the_host(graded):
    assert not HOST_MARKER.exists()
    assert not (REPO / "pwned.txt").exists()


def test_isolation_is_reported(graded):
    summary, records = graded
    assert summary["isolation"] == available_isolation()
    assert all(r["isolation"] == summary["isolation"] for r in records.values() if r["status"] != "error")
    if summary["isolation"] != "bwrap":
        assert "rlimits ONLY" in summary["isolation_warning"]


# -- memory, shared memory included (cgroups where the machine has them) ----------------------

FILL_SHM = ("chunk = b'x' * (8 << 20)\nfor i in range(192):  # 1.5 GiB\n"
            "    with open('/dev/shm/fill-%d' % i, 'wb') as f:\n        f.write(chunk)\n")


def test_a_submission_filling_shared_memory_is_stopped_at_its_limit_and_the_record_says_so(
        course, submitted_nb, tmp_path):
    """Shared memory once escaped the child's memory limit (six such submissions got the
    parent OOM-killed). With a cgroup per child it counts against the child's own limit: the
    child is killed at it and the record says "memory limit"; without one, the box's /dev/shm
    is a tmpfs of ``shm_bytes`` and the write fails there. Either way the parent and the batch
    go on."""
    from grader.runner import ChildPool

    isolation = os.environ.get("BACKPROP_ISOLATION") or None
    with ChildPool(workers=1, limits=Limits(timeout=10.0), isolation=isolation) as probe:
        mode, box = probe.limits_mode, probe.isolation == "bwrap"
    if not mode.startswith("cgroup") and not box:
        pytest.skip("rlimits only: /dev/shm is the host's, bounded by nothing this test may fill")
    cls = tmp_path / "class"
    sample.write(sample.add_cell(submitted_nb, FILL_SHM, after="mse-solution"), cls / "fills-shm.ipynb")
    sample.write(submitted_nb, cls / "honest.ipynb")
    memory = 512 << 20
    # with a cgroup, a /dev/shm far larger than the memory limit: the cgroup is what must stop it
    shm = 2 << 30 if mode.startswith("cgroup") else 16 << 20
    limits = Limits(timeout=30.0, memory_bytes=memory, shm_bytes=shm, scratch_bytes=64 << 20, fsize_bytes=16 << 20)
    summary = grade(Request(path=cls, assignment=ASSIGNMENT, course=course, out=tmp_path / "out", workers=2,
                            options=Options(limits=limits, budget=120.0, max_restarts=1), nbgrader=False,
                            reports=False, isolation=isolation))
    records = {r["student"]: r for r in json.loads((tmp_path / "out" / "results.json").read_text())}
    assert not summary["grader_errors"] and summary["limits"] == mode
    assert all(r["limits"] == mode for r in records.values())
    honest, filler = records["honest"], records["fills-shm"]
    assert honest["status"] == "graded" and honest["total"] == honest["max"]
    (cell,) = [c for c in filler["cells"] if c["id"].startswith("added-")]
    if mode.startswith("cgroup"):
        assert cell["status"] == "crashed" and f"killed at its memory limit of {memory >> 20} MiB" in cell["error"], cell
    else:
        assert cell["status"] == "error" and "No space left on device" in cell["error"], cell
    assert filler["total"] <= honest["total"]  # its own correct code still counts; the fill gained nothing


def test_the_mode_line_says_how_memory_and_cpu_are_bounded(graded):
    from grader.grading.gradebook import format_summary

    summary, records = graded
    assert summary["limits"] in ("cgroup v1", "cgroup v2", "tmpfs+rlimits", "rlimits")
    assert (summary["limits"] == "tmpfs+rlimits") == (summary["isolation"] == "bwrap" and
                                                      not summary["limits"].startswith("cgroup"))
    assert all(r["limits"] == summary["limits"] for r in records.values())
    line = next(x for x in format_summary(summary).splitlines() if "isolation: " in x)
    assert f"isolation: {summary['isolation']} (memory and CPU: {summary['limits']})" in line
