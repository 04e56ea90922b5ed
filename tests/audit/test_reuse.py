"""The audit grades a mutant from the reference's work where that is exact: a case that never
runs the mutated code takes the reference's record and verdict, and a record equal to the
reference's takes its verdict without being judged again. Both must give the scores and
diagnoses that probing and judging every case gives: here they are compared, mutant by
mutant, over every test and seed set, on assignments of every check kind (the loop test of
tensor_edf sees each component in some graphs only; the mlp units run in the notebook's
training cell)."""
from __future__ import annotations

import functools

import pytest

from grader.audit.mutants import mutants
from grader.audit.namespace import build
from grader.audit.run import Context, grade
from grader.audit.units import load
from grader.authoring.assignment import ASSIGNMENTS

# one unit per check kind, a few mutants each: the whole audit runs in tests/audit/test_every_assignment.py
CASES = [("scalar_backprop", ("ReLU.backward", "Backward")),
         ("forward_mode", ("Dual.__mul__", "Var.backward")),
         ("tensor_edf", ("Mul.backward", "unbroadcast", "Sigmoid.forward")),
         ("mlp_training", ("train_step", "MLP.predict")),
         ("conv_edf", ("MaxPool2D.forward", "Flatten.backward"))]


@functools.lru_cache(maxsize=None)
def primed(name: str):
    _, units = load(name, ASSIGNMENTS)
    ctx = Context.load(name, str(ASSIGNMENTS), 2)
    ctx.prime(units)
    return ctx, units


@pytest.mark.parametrize("name,wanted", CASES, ids=[c[0] for c in CASES])
def test_reused_records_and_verdicts_grade_as_probing_every_case(name, wanted):
    """As ``run_task`` grades a mutant (built without the training cell where its own test
    does not need it), against the same namespace with every case of every test probed and
    judged: the same scores, and the same diagnoses wherever a test was graded."""
    ctx, units = primed(name)
    muts = [m for m in mutants(units) if m.unit in wanted]
    assert {m.unit for m in muts} == set(wanted)
    every = ctx.all_cases()
    assert every >= {(t, k, i) for (t, k), recs in ctx.ref_records.items() for i in range(len(recs))}
    everything = {c.id for c in ctx.cells}
    # a test some of whose cases run the unit and some not: there the reference's records stand in
    partly = [(u, pair) for u in wanted for pair, recs in ctx.ref_records.items()
              if 0 < sum((*pair, i) in ctx.reached(units, u, everything) for i in range(len(recs))) < len(recs)]
    if name == "tensor_edf":
        assert partly, "no test is partly reached: the comparison below would not test reuse"
    long_tests = ctx.needs_long_cells()
    if name == "conv_edf":
        assert long_tests and ctx.long_cells  # the training cell: left out of these mutants' builds
    for m in [m for u in wanted for m in [x for x in muts if x.unit == u][::7][:2]]:
        unit = next(u for u in units if u.name == m.unit)
        short = bool(long_tests) and unit.test not in long_tests
        cells = [c for c in ctx.cells if not (short and c.id in ctx.long_cells)]
        skipped = {(t, k) for t in long_tests for k in range(ctx.n_sets)} if short else None
        reached = ctx.reached(units, m.unit, {c.id for c in cells})
        if name == "conv_edf":
            assert reached < every  # the training cell left out: only the cases that call the unit
        fast = grade(ctx, build(cells, {m.top: m.source})[0], reached, skipped)
        # the same namespace built again, every case probed and judged (no reference records)
        saved, ctx.ref_records = ctx.ref_records, None
        try:
            slow = grade(ctx, build(cells, {m.top: m.source})[0], every, skipped)
        finally:
            ctx.ref_records = saved
        for t in fast:  # a test the mutant does not reach scores as the reference, graded or not
            kept = [k for k, d in enumerate(fast[t]["diagnoses"]) if d != "not reached"]
            assert [fast[t]["scores"][k] for k in kept] == [slow[t]["scores"][k] for k in kept], (m.id, t)
            assert [fast[t]["diagnoses"][k] for k in kept] == [slow[t]["diagnoses"][k] for k in kept], (m.id, t)
            assert all(slow[t]["scores"][k] in (1.0, None) for k in range(ctx.n_sets) if k not in kept), (m.id, t)


def test_a_unit_outside_the_training_cell_does_not_reach_the_learning_case():
    """mlp_training's learning case trains with build_mlp, train_step and train: a mutant of
    MLP.predict never runs there, so the audit takes the reference's (costly) learning record."""
    ctx, units = primed("mlp_training")
    reach = ctx.reach(units)
    learning = {(t, k, i) for (t, k), recs in ctx.ref_records.items() for i in range(len(recs))
                if t == "accuracy" and ctx.specs[(t, k)][1][i].get("learning")}
    assert learning
    assert learning <= reach["train_step"] and learning <= reach["build_mlp"]
    assert not learning & reach["MLP.predict"]


def test_defining_a_unit_is_not_running_it():
    """A cell's own code object starts at line 1, as a function defined on the cell's first
    line does: only calls of the unit's function count (conv_edf's ``predict`` and ``im2col``
    open their cells). The training cell runs the components, and only it."""
    ctx, units = primed("conv_edf")
    assert not ctx.build_cells["predict"]
    assert ctx.build_cells["im2col"] == {"final-model-solution"}
    learning = {(t, k, i) for (t, k), recs in ctx.ref_records.items() for i in range(len(recs))
                if ctx.specs[(t, k)][1][i].get("cnn_learning")}
    assert learning and not learning & ctx.reached(units, "predict", {c.id for c in ctx.cells})
