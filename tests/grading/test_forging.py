"""Forged answers never earn silent marks: attacks on the grading harness from inside the child.

Every forging notebook starts from the released notebook (every stub still raises
``NotImplementedError``) and carries a complete correct solution hidden in a private dict
(``_shadow``): an attack that made the harness probe that dict instead of the notebook's
own names would earn full marks. Each attack must run (its cell finishes without error),
earn nothing, and put the submission on the TA's review list, which shows in the gradebook
column, the class report, the terminal summary; the student's feedback only says a TA will
review it. Real notebooks, real sandbox, one real ``backprop grade`` batch.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from grader.files import file_stem
from grader.grading import sample
from grader.grading.batch import Request, format_summary, grade
from grader.grading.execute import Options
from grader.grading.notebook import parse
from grader.grading.scan import scan
from grader.runner import Limits

ASSIGNMENT = "tensor_edf"
ISOLATION = os.environ.get("BACKPROP_ISOLATION") or None  # "rlimits-only" to test the fallback

# What every attack needs: the correct solution in a private namespace, and the modules of
# the harness found by every route there is (sys.modules, import, the garbage collector).
PRELUDE = '''
import sys, gc, types
_shadow = {{}}
exec({shadow!r}, _shadow)

def _modules(name):
    found = []
    if sys.modules.get(name) is not None:
        found.append(sys.modules[name])
    try:
        found.append(__import__(name))
    except ImportError:
        pass
    found += [o for o in gc.get_objects() if isinstance(o, types.ModuleType) and getattr(o, "__name__", "") == name]
    return found

_real = [m.probe for m in _modules("backprop_checks")][0]

def probe(ns, spec):
    return _real(_shadow, spec)

def probe_all(ns, specs):
    return {{"records": [_real(_shadow, s) for s in specs], "evidence": []}}

def probe_one(ns, spec):
    return {{"records": [_real(_shadow, spec)], "evidence": []}}
'''

# the issue's attack: the checks' probe replaced by one that answers from the shadow solution
OWN_PROBE = '''
for _m in _modules("backprop_checks"):
    _m.probe = probe
'''
# the harness's entry points replaced on its module
OWN_HARNESS = '''
for _m in _modules("backprop_grading_io"):
    _m.probe_all, _m.probe_one = probe_all, probe_one
'''
# every dict anywhere that maps "probe_all" to a function gets the forged one
EVERY_DICT = '''
for _d in gc.get_objects():
    if type(_d) is dict and _d is not globals() and callable(_d.get("probe_all")):
        _d["probe_all"], _d["probe_one"] = probe_all, probe_one
'''
# up the stack from the cell to the runner's server object, and through it to the modules
THROUGH_FRAMES = '''
_f = sys._getframe(1)
while _f is not None and not hasattr(_f.f_locals.get("self"), "modules"):
    _f = _f.f_back
_server = _f.f_locals["self"]
_server.modules["backprop_checks"].probe = probe
_server.modules["backprop_grading_io"].probe_all = probe_all
'''
# the registered kinds' probes, set past their frozen dataclass, each now probing the shadow
KIND_PROBES = '''
for _m in _modules("backprop_checks"):
    for _kind in list(getattr(_m, "KINDS", {}).values()):
        object.__setattr__(_kind, "probe", lambda ns, spec, _p=_kind.probe: _p(_shadow, spec))
'''
# import the checks (and the runner's module holding them) by name and patch them
IMPORTS = '''
for _name in ("backprop_checks", "child"):
    try:
        _m = __import__(_name)
    except ImportError:
        continue
    _m.probe = probe
    for _mod in getattr(_m, "_PRELOADED", {}).values():
        _mod.probe = probe
'''
# numpy functions the child's harness never calls (the judge compares in the parent)
PATCH_ALLCLOSE = '''
import numpy as np
np.allclose = lambda *a, **k: True
np.isclose = lambda *a, **k: np.True_
'''
# a numpy function the harness does call, wrapped (it even still works)
WRAP_ASARRAY = '''
import numpy as np
_asarray = np.asarray
np.asarray = lambda *a, **k: _asarray(*a, **k)
'''
NDARRAY_EQ = '''
import gc
import numpy as np
gc.get_referents(np.ndarray.__dict__)[0]["__eq__"] = lambda a, b: True
'''


def _shadow_source(nb: dict) -> str:
    """Every code cell of the correct notebook but its test cells."""
    return "\n\n".join(sample._src(cell) for cell in nb["cells"] if cell["cell_type"] == "code"
                       and not cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


@pytest.fixture(scope="module")
def notebooks(course, submitted_nb) -> dict:
    stubs = sample.as_submitted(sample.load_notebook(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"))
    prelude = PRELUDE.format(shadow=_shadow_source(submitted_nb))
    forge = {
        "added_cell_defines_its_own_probe": sample.add_cell(stubs, prelude + OWN_PROBE, after="mse-solution"),
        "solution_cell_defines_its_own_harness": sample.append_code(stubs, "sigmoid-solution", prelude + OWN_HARNESS),
        "rebinds_every_entry_point_found_by_gc": sample.add_cell(stubs, prelude + EVERY_DICT, after="mse-solution"),
        "reaches_the_harness_through_frames": sample.add_cell(stubs, prelude + THROUGH_FRAMES, after="mse-solution"),
        "imports_the_checks_and_patches_probe": sample.add_cell(stubs, prelude + IMPORTS, after="mse-solution"),
        "rebinds_the_kinds_probes": sample.add_cell(stubs, prelude + KIND_PROBES, after="mse-solution"),
    }
    patch = {
        "patches_np_allclose": sample.add_cell(submitted_nb, PATCH_ALLCLOSE, after="mse-solution"),
        "wraps_np_asarray": sample.add_cell(submitted_nb, WRAP_ASARRAY, after="mse-solution"),
        "replaces_ndarray_eq": sample.add_cell(submitted_nb, NDARRAY_EQ, after="mse-solution"),
    }
    return {"forge": forge, "patch": patch, "honest": submitted_nb, "stubs": stubs}


@pytest.fixture(scope="module")
def graded(course, notebooks, tmp_path_factory):
    root = tmp_path_factory.mktemp("forging")
    cls = root / "class"
    for group in ("forge", "patch"):
        for name, nb in notebooks[group].items():
            sample.write(nb, cls / f"{name}.ipynb")
    sample.write(notebooks["honest"], cls / "honest.ipynb")
    sample.write(notebooks["stubs"], cls / "stubs.ipynb")
    opts = Options(limits=Limits(timeout=5.0, memory_bytes=1 << 30), budget=60.0)
    summary = grade(Request(path=cls, assignment=ASSIGNMENT, course=course, out=root / "out", workers=2,
                            options=opts, nbgrader=False, reports=True, isolation=ISOLATION))
    records = {r["student"]: r for r in json.loads((root / "out" / "results.json").read_text())}
    return summary, records, root / "out"


def _review(rec: dict) -> list[str]:
    return [f for f in rec["flags"] if f.startswith("needs review: ")]


def test_honest_work_is_graded_in_full_and_not_flagged(graded):
    _, records, _ = graded
    honest, stubs = records["honest"], records["stubs"]
    assert honest["total"] == honest["max"] and not _review(honest), honest["flags"]
    assert stubs["total"] == 0 and not _review(stubs), stubs["flags"]


@pytest.mark.parametrize("name", ["added_cell_defines_its_own_probe", "solution_cell_defines_its_own_harness",
                                  "rebinds_every_entry_point_found_by_gc", "reaches_the_harness_through_frames",
                                  "imports_the_checks_and_patches_probe", "rebinds_the_kinds_probes"])
def test_a_forged_harness_earns_nothing_and_is_flagged(graded, name):
    _, records, _ = graded
    rec = records[name]
    assert rec["status"] == "graded"
    forging = [c for c in rec["cells"] if c["id"].startswith("added-") or c["id"] == "sigmoid-solution"]
    assert forging and all(c["status"] == "ok" for c in forging), rec["cells"]  # the attack ran
    assert rec["total"] == 0, [(t["id"], t["points"]) for t in rec["tests"] if t["points"]]
    flags = _review(rec)
    assert flags, rec["flags"]
    runtime = [f for f in flags if "cell " not in f.split(": ", 1)[1][:5]]  # the child's evidence, not the scan's
    assert any("tampered with" in f for f in runtime), flags


def test_evidence_reported_out_of_band_survives_a_forged_reply(graded):
    """The gc attack makes the harness's own module answer with forged, well-formed replies
    that report nothing: the parent still learns of it from what the audit hook wrote."""
    _, records, _ = graded
    flags = _review(records["rebinds_every_entry_point_found_by_gc"])
    assert any("walked the interpreter's objects" in f for f in flags), flags


def test_patching_what_the_harness_never_uses_is_flagged_and_changes_no_verdict(graded):
    """np.allclose in the child decides nothing (the judge compares in the parent)."""
    _, records, _ = graded
    rec = records["patches_np_allclose"]
    assert rec["total"] == rec["max"]  # the correct solution's own points
    assert any("patches np.allclose" in f for f in _review(rec)), rec["flags"]
    assert not any("tampered with" in f for f in rec["flags"])


@pytest.mark.parametrize("name", ["wraps_np_asarray", "replaces_ndarray_eq"])
def test_patching_what_the_harness_relies_on_holds_the_points_for_review(graded, name):
    _, records, _ = graded
    rec = records[name]
    assert rec["total"] == 0  # the correct solution's points wait for the TA
    held = [t for t in rec["tests"] if t["result"]["diagnosis"] == "needs_review"]
    assert held and all("will be reviewed by a TA" in t["result"]["message"] for t in held)
    assert all(t["result"]["details"]["judged"]["passed"] for t in held)  # what the TA will see
    assert any("tampered with" in f for f in _review(rec)), rec["flags"]


def test_flags_reach_the_gradebook_the_report_and_the_summary_but_not_the_student(graded):
    summary, records, out = graded
    flagged = sorted(n for n, r in records.items() if _review(r))
    assert set(flagged) >= set(summary["review"]) >= {"patches_np_allclose", "wraps_np_asarray",
                                                      "added_cell_defines_its_own_probe"}
    assert "honest" not in summary["review"]
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert rows["honest"]["review"] == ""
    assert "tampered with" in rows["wraps_np_asarray"]["review"] and "asarray" in rows["wraps_np_asarray"]["review"]
    assert "patches np.allclose" in rows["patches_np_allclose"]["review"]
    text = format_summary(summary)
    assert "needs review by a TA" in text and "wraps_np_asarray" in text
    report = Path(summary["outputs"]["report"]).read_text()
    assert "wraps_np_asarray" in report and "tampered with" in report
    feedback = (out / "feedback" / f"{file_stem('wraps_np_asarray')}.md").read_text()
    assert "reviewed by a TA" in feedback
    assert "tampered" not in feedback and "rebound" not in feedback and "needs review:" not in feedback


def test_the_static_scan_names_the_harness_aimed_code(notebooks):
    cells = parse(json.dumps(notebooks["forge"]["solution_cell_defines_its_own_harness"]).encode())
    roles = {c.id: c for c in cells}
    flags = scan([{"id": c.id, "role": "solution", "source": c.source} for c in roles.values()
                  if c.id == "sigmoid-solution"])
    assert any("defines probe_all, a name of the grading harness" in f for f in flags), flags
    assert any("imports gc" in f for f in flags)
    honest = parse(json.dumps(notebooks["honest"]).encode())  # its test cells are not student code
    assert not [f for f in scan([{"id": c.id, "role": "solution", "source": c.source} for c in honest
                                 if c.cell_type == "code" and not (c.grade_id or "").startswith("test_")])
                if f.startswith("needs review")]
