"""Grading namespaces with the hidden suite, under several seed sets, in worker processes.

Set 0 is the suite's own hidden seeds; set k > 0 replaces every hidden seed s with one
derived from (assignment, test, k, s) by a hash, so the audit holds for seeds nobody chose:
the same mixing (``hidden.seeded``) that gives each graded submission its own seeds.
A test whose specs do not depend on the seed (fixed cases, the held-out digits) is graded
once and its score stands for every set.

Mutants are trusted code (derived from the reference), but a mutant may loop forever or
allocate without bound: each runs in a worker process with an address-space limit, and a
worker that overruns the per-mutant deadline is killed and replaced (the mutant is then
reported as killed by timeout, as grading would give it nothing).
"""
from __future__ import annotations

import ast
import copy
import hashlib
import multiprocessing as mp
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from grader.authoring.assignment import ASSIGNMENTS, load_assignment
from grader.checks import hidden, probe
from grader.checks.records import admit

from . import domains
from .namespace import build, notebook_cells

MEMORY_LIMIT = 3 * 2 ** 30  # bytes of address space per worker
LONG_CELL_CPU = 1.0         # CPU seconds above which a reference cell is long (training)


def derived_seed(assignment: str, test: str, k: int, seed: int) -> int:
    return hidden.mixed_seed(assignment, test, k, seed)


def seed_set(table: dict, k: int) -> dict:
    """The test's table with its hidden seeds replaced for seed set ``k`` (0: unchanged): set k
    is what grading gives a submission whose key is k (``hidden.seeded``, the one mixing)."""
    return hidden.seeded(table, k or None)


def _key(specs) -> str:
    return hashlib.sha256(pickle.dumps(specs, protocol=5)).hexdigest()


@dataclass
class Context:
    """One assignment as a worker grades it: cells, reference namespace, specs per seed set."""

    name: str
    root: str
    n_sets: int
    tests: list = field(default_factory=list)        # suite tables
    specs: dict = field(default_factory=dict)         # (test id, k) -> specs
    same_as: dict = field(default_factory=dict)       # (test id, k) -> k' with identical specs
    cells: list = field(default_factory=list)
    ref_ns: dict | None = None
    reach_map: dict | None = None
    cell_cpu: dict = field(default_factory=dict)    # cell id -> CPU seconds in the reference
    long_tests: set | None = None                    # tests that need the long cells

    @classmethod
    def load(cls, name: str, root: str, n_sets: int) -> "Context":
        a = load_assignment(name, root=Path(root))
        ctx = cls(name, root, n_sets, [t.table for t in a.tests])
        ctx.cells = notebook_cells(a)
        for t in ctx.tests:
            seen = {}
            for k in range(n_sets):
                table = seed_set(t, k)
                specs = hidden.build_specs(table, "hidden")
                key = _key(specs)
                if key in seen:
                    ctx.same_as[(t["id"], k)] = seen[key]
                else:
                    seen[key] = k
                    ctx.specs[(t["id"], k)] = (table, specs)
        return ctx

    def reach(self, units) -> dict:
        """{unit name: {(test id, set k)}}: where the reference runs each unit's code.

        A mutant changes one unit's body only, so a (test, seed set) that never calls that
        code grades the mutant exactly as the reference: it need not be run.
        """
        if self.reach_map is not None:
            return self.reach_map
        ns = self.reference()
        where = _unit_code_keys(self.cells, units)
        self.reach_map = {u.name: set() for u in units}
        current = [None]

        def prof(frame, event, arg):
            if event == "call":
                name = where.get((frame.f_code.co_filename, frame.f_code.co_firstlineno))
                if name is not None:
                    self.reach_map[name].add(current[0])
        # code the notebook runs while it is built (the training cell) counts for every test
        in_build: set = set()

        def prof_build(frame, event, arg):
            if event == "call":
                name = where.get((frame.f_code.co_filename, frame.f_code.co_firstlineno))
                if name is not None:
                    in_build.add(name)
        sys.setprofile(prof_build)
        try:
            build(self.cells)
        finally:
            sys.setprofile(None)
        for t in self.tests:
            for k in range(self.n_sets):
                current[0] = (t["id"], k)
                src = self.same_as.get((t["id"], k), k)
                table, specs = self.specs[(t["id"], src)]
                sys.setprofile(prof)
                try:
                    for s in copy.deepcopy(specs):
                        probe(ns, s)
                finally:
                    sys.setprofile(None)
                for name in in_build:
                    self.reach_map[name].add((t["id"], k))
        return self.reach_map

    def fresh_reference(self) -> dict:
        ns, errors = build(self.cells)
        if errors:
            raise RuntimeError(f"{self.name}: the reference notebook fails: {errors}")
        return ns

    @property
    def long_cells(self) -> set:
        """Cells whose reference run takes over LONG_CELL_CPU seconds (a network's training)."""
        self.reference()
        return {c for c, t in self.cell_cpu.items() if t > LONG_CELL_CPU}

    def needs_long_cells(self) -> set:
        """The tests the reference fails (seed set 0) when its long cells are left out (the ones
        that measure what those cells compute), and the learning tests, which train too."""
        if self.long_tests is None:
            self.long_tests = set()
            if self.long_cells:
                ns, _ = build([c for c in self.cells if c.id not in self.long_cells])
                only0 = {(t["id"], k) for t in self.tests for k in range(1, self.n_sets)}
                self.long_tests = {t for t, r in grade(self, ns, skipped=only0).items() if r["scores"][0] < 1}
                # a learning test trains a network itself (seconds per mutant), whatever it needs
                self.long_tests |= {t["id"] for t in self.tests if t["check"] == "mlp_accuracy"}
        return self.long_tests

    def reference(self) -> dict:
        if self.ref_ns is None:
            self.ref_ns, errors = build(self.cells, timings=self.cell_cpu)
            if errors:
                raise RuntimeError(f"{self.name}: the reference notebook fails: {errors}")
        return self.ref_ns


def _unit_code_keys(cells, units) -> dict:
    """(code filename, first line) of each unit's function as the notebook's cells define it."""
    out = {}
    by_cell = {c.id: c for c in cells}
    for u in units:
        cell = by_cell.get(u.cell)
        if cell is None:
            continue
        for node in ast.parse(cell.source).body:
            if getattr(node, "name", None) != u.top:
                continue
            fn = node if u.method is None else next(
                (f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == u.method), None)
            if fn is not None:
                line = fn.decorator_list[0].lineno if fn.decorator_list else fn.lineno
                out[(f"<cell {cell.id}>", line)] = u.name
    return out


def grade(ctx: Context, ns: dict, reached=None, skipped=None) -> dict:
    """{test id: {"scores": [per seed set], "diagnoses": [...]}} for a namespace.

    ``reached``: the (test, set) pairs whose specs run the mutated code; any other scores
    as the reference does (1). ``skipped``: pairs not graded, score None.
    A check that raises is a grader bug (an exception, not a score).
    """
    out = {}
    for t in ctx.tests:
        scores, details = [], []
        for k in range(ctx.n_sets):
            if (t["id"], k) in ctx.same_as:
                scores.append(scores[ctx.same_as[(t["id"], k)]])
                details.append(details[ctx.same_as[(t["id"], k)]])
                continue
            if reached is not None and (t["id"], k) not in reached:
                scores.append(1.0)
                details.append("not reached")
                continue
            if skipped and (t["id"], k) in skipped:
                scores.append(None)
                details.append("not graded")
                continue
            table, specs = ctx.specs[(t["id"], k)]
            specs = copy.deepcopy(specs)  # a mutant may write into the arrays it is given
            records = admit([probe(ns, s) for s in specs], len(specs))  # judged as grading judges them
            r = hidden.judge(table, specs, records)
            scores.append(float(r.score))
            details.append(r.diagnosis)
        out[t["id"]] = {"scores": scores, "diagnoses": details}
    return out


# -- one task: a namespace built with overrides, graded, compared with the reference ------

def run_task(ctx: Context, task: dict) -> dict:
    """Grade one namespace. A mutant whose own test does not need the notebook's long cells
    (training) is built without them, and the tests that do need them are not graded for it
    (score None) unless ``full``: its own test is judged exactly as in a full build."""
    unit = task.get("unit")
    reached = skipped = None
    cells = task.get("cells") or ctx.cells
    if unit is not None:
        reached = ctx.reach(task["units"])[unit.name]
        if not task.get("all_sets_elsewhere"):  # other tests: the suite's own seeds only
            skipped = {(t, k) for t, k in reached if t != unit.test and k > 0}
        long_tests = ctx.needs_long_cells()
        if not task.get("full") and long_tests and unit.test not in long_tests:
            cells = [c for c in cells if c.id not in ctx.long_cells]
            skipped = (skipped or set()) | {(t, k) for t in long_tests for k in range(ctx.n_sets)}
    ns, errors = build(cells, task.get("overrides"))
    result = {"id": task["id"], "status": "ok", "errors": errors, "tests": grade(ctx, ns, reached, skipped)}
    if unit is not None:
        result["domain"] = domains.compare(ctx, ns, unit)
    return result


# -- the pool --------------------------------------------------------------------------

_CONTEXTS: dict = {}


def _worker(conn, memory_limit):
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    except (ImportError, ValueError, OSError):
        pass
    os.environ.setdefault("MPLBACKEND", "Agg")
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        ctx_key, task = msg
        try:
            ctx = _CONTEXTS.get(ctx_key)
            if ctx is None:
                ctx = _CONTEXTS[ctx_key] = Context.load(*ctx_key)
            conn.send(run_task(ctx, task))
        except MemoryError:
            conn.send({"id": task["id"], "status": "memory", "errors": ["MemoryError"], "tests": {}})
        except Exception as e:  # a grader bug: reported with the mutant, never silent
            conn.send({"id": task["id"], "status": "grader_error",
                       "errors": [f"{type(e).__name__}: {e}"], "tests": {}})


class Pool:
    """Workers forked from this process; one task at a time each, killed at its deadline."""

    def __init__(self, workers: int = 2, timeout: float = 60.0, memory_limit: int = MEMORY_LIMIT):
        self.n, self.timeout, self.memory_limit = max(1, workers), timeout, memory_limit
        self._mp = mp.get_context("fork")
        self.workers: list = []

    def _spawn(self):
        parent, child = self._mp.Pipe()
        p = self._mp.Process(target=_worker, args=(child, self.memory_limit), daemon=True)
        p.start()
        child.close()
        return {"proc": p, "conn": parent, "task": None, "deadline": None}

    def __enter__(self):
        self.workers = [self._spawn() for _ in range(self.n)]
        return self

    def __exit__(self, *exc):
        for w in self.workers:
            try:
                w["conn"].send(None)
            except (BrokenPipeError, OSError):
                pass
        for w in self.workers:
            w["proc"].join(timeout=2)
            if w["proc"].is_alive():
                w["proc"].kill()
                w["proc"].join()

    def map(self, ctx_key: tuple, tasks: list[dict], progress=None) -> list[dict]:
        pending = list(tasks)[::-1]
        results: dict = {}
        while pending or any(w["task"] for w in self.workers):
            for w in self.workers:
                if w["task"] is None and pending:
                    w["task"] = pending.pop()
                    w["deadline"] = time.monotonic() + self.timeout * w["task"].get("timeout_scale", 1)
                    w["conn"].send((ctx_key, w["task"]))
            busy = [w for w in self.workers if w["task"]]
            ready = wait([w["conn"] for w in busy], timeout=0.5)
            now = time.monotonic()
            for i, w in enumerate(self.workers):
                if not w["task"]:
                    continue
                if w["conn"] in ready:
                    try:
                        res = w["conn"].recv()
                    except (EOFError, OSError):
                        res = {"id": w["task"]["id"], "status": "crashed", "errors": ["worker died"], "tests": {}}
                        self._replace(i)
                    results[res["id"]] = res
                    self.workers[i]["task"] = None
                    if progress:
                        progress(len(results), len(tasks))
                elif now > w["deadline"] or not w["proc"].is_alive():
                    status = "timeout" if w["proc"].is_alive() else "crashed"
                    results[w["task"]["id"]] = {"id": w["task"]["id"], "status": status,
                                                "errors": [f"{status} after {self.timeout:g} s"], "tests": {}}
                    self._replace(i)
        return [results[t["id"]] for t in tasks]

    def _replace(self, i):
        w = self.workers[i]
        if w["proc"].is_alive():
            w["proc"].kill()
        w["proc"].join()
        w["conn"].close()
        self.workers[i] = self._spawn()


def context_key(name: str, root=ASSIGNMENTS, n_sets: int = 3) -> tuple:
    return (name, str(root), n_sets)
