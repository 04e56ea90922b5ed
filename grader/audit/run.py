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

from grader.authoring.assignment import ASSIGNMENTS
from grader.checks import hidden, probe
from grader.checks.records import admit

from . import domains
from .namespace import build, notebook_cells
from .units import assignment

MEMORY_LIMIT = 3 * 2 ** 30  # bytes of address space per worker
JUDGING = "judging"          # ``prime``: the judge runs, no case's probe
# A long cell (a network's training) takes at least LONG_CELL_CPU seconds of the reference's
# CPU time and at least LONG_CELL_SHARE of the whole notebook's: a share, so the same cells
# are long on a fast machine and a slow one
LONG_CELL_CPU = 0.1
LONG_CELL_SHARE = 0.5


class ReferenceFails(RuntimeError):
    """The reference notebook raises in one of its cells: there is nothing to audit against."""


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
    build_cells: dict = field(default_factory=dict)  # unit -> cells during whose build it runs
    cell_cpu: dict = field(default_factory=dict)    # cell id -> CPU seconds in the reference
    long_tests: set | None = None                    # tests that need the long cells
    ref_records: dict | None = None                  # (test id, k) -> [(digest, record)] of the reference
    ref_cases: dict = field(default_factory=dict)    # (test id, k, case) -> the reference's CaseResult
    reference_result: dict | None = None             # the reference's grades (``prime``)
    _all_cases: set | None = None

    @classmethod
    def load(cls, name: str, root: str, n_sets: int) -> "Context":
        a = assignment(name, Path(root))
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
        """{unit name: {(test id, set k, case i)}}: the cases whose probe runs each unit's code.

        A mutant changes one unit's body only, so a case that never calls that code gives
        the reference's record: it need not be run (its record and verdict are the
        reference's), and a test none of whose cases call it grades the mutant as the
        reference. Computed once, with the reference's own grades (``prime``).
        """
        if self.reach_map is None:
            self.prime(units)
        return self.reach_map

    def reached(self, units, name: str, built: set) -> set:
        """The cases a mutant of unit ``name`` can change when its namespace is built from the
        cells ``built``: those that call the unit, or every case if the unit runs while one
        of those cells is built (the training cell: what it leaves in the namespace may differ)."""
        direct = self.reach(units)[name]
        return direct | self.all_cases() if self.build_cells.get(name, set()) & built else direct

    def all_cases(self) -> set:
        """Every (test id, set k, case i), sets with another set's specs included."""
        if self._all_cases is None:
            sizes = {pair: len(recs) for pair, recs in self.ref_records.items()}
            sizes.update({(tid, k): sizes[(tid, src)] for (tid, k), src in self.same_as.items()})
            self._all_cases = {(tid, k, i) for (tid, k), n in sizes.items() for i in range(n)}
        return self._all_cases

    def prime(self, units) -> dict:
        """Build and grade the reference once, recording where each unit's code runs (case by
        case), each case's record (with a digest: a mutant's identical record gets the
        reference's verdict without judging it again) and the reference's grades."""
        if self.reference_result is not None:
            return self.reference_result
        where = _unit_code_keys(self.cells, units)
        reach = {u.name: set() for u in units}
        in_build: dict = {u.name: set() for u in units}  # unit -> the cells during whose build it runs
        current: list = [None]
        cell: list = [None]

        def calls(frame, event, arg):
            # a global trace function sees each Python call (no C calls, as a profile function
            # would); returning None traces no line of it
            name = where.get((frame.f_code.co_filename, frame.f_code.co_firstlineno, frame.f_code.co_name))
            if name is not None:
                if current[0] is None:
                    in_build[name].add(cell[0])
                elif current[0] != JUDGING:  # the judge's own reference runs are not the notebook's
                    reach[name].add(current[0])
        start = time.monotonic()
        before = sys.gettrace()
        sys.settrace(calls)
        try:
            ns, errors = build(self.cells, on_cell=lambda c: cell.__setitem__(0, c))
            keep: dict = {}
            tests = grade(self, ns, keep=keep, current=current)
        finally:
            sys.settrace(before)
        for (tid, k), src in self.same_as.items():  # a set with another's specs: its cases too
            for name in reach:
                reach[name].update((tid, k, i) for t, kk, i in list(reach[name]) if t == tid and kk == src)
        self.reach_map, self.ref_records, self.build_cells = reach, keep, in_build
        self.reference_result = {"id": "reference", "status": "ok", "errors": errors, "tests": tests,
                                 "seconds": time.monotonic() - start}
        self.reference()  # timed without tracing: its cells' CPU seconds say which are long
        return self.reference_result

    def reference_case(self, table: dict, specs: list, k: int, i: int):
        """The reference's verdict on case i of (table, set k), judged once per process."""
        key = (table["id"], k, i)
        if key not in self.ref_cases:
            record = copy.deepcopy(self.ref_records[(table["id"], k)][i][1])
            self.ref_cases[key] = hidden.judge_cases(table, specs[i:i + 1], [record])[0]
        return self.ref_cases[key]

    def fresh_reference(self) -> dict:
        ns, errors = build(self.cells)
        if errors:
            raise ReferenceFails(f"{self.name}: the reference notebook fails: {errors}")
        return ns

    @property
    def long_cells(self) -> set:
        """Cells that take most of the reference's build (a network's training)."""
        self.reference()
        total = sum(self.cell_cpu.values())
        return {c for c, t in self.cell_cpu.items() if t >= LONG_CELL_CPU and t >= LONG_CELL_SHARE * total}

    def needs_long_cells(self) -> set:
        """The tests the reference fails (seed set 0) when its long cells are left out (the ones
        that measure what those cells compute), and the learning tests, which train too."""
        if self.long_tests is None:
            self.long_tests = set()
            if self.long_cells:
                # a learning test trains a network itself (seconds per mutant), whatever it needs
                learning = {t["id"] for t in self.tests if t["check"] == "mlp_accuracy"}
                ns, _ = build([c for c in self.cells if c.id not in self.long_cells])
                skip = {(t["id"], k) for t in self.tests for k in range(self.n_sets)
                        if k > 0 or t["id"] in learning}
                self.long_tests = {t for t, r in grade(self, ns, skipped=skip).items() if r["scores"][0] is not None
                                   and r["scores"][0] < 1} | learning
        return self.long_tests

    def reference(self) -> dict:
        if self.ref_ns is None:
            # timed after a first build (``prime``'s, else one here): that one imports the
            # notebook's modules (matplotlib takes a second of CPU), and an import is no long cell
            if self.reference_result is None:
                build(self.cells)
            self.ref_ns, errors = build(self.cells, timings=self.cell_cpu)
            if errors:
                raise ReferenceFails(f"{self.name}: the reference notebook fails: {errors}")
        return self.ref_ns


def _unit_code_keys(cells, units) -> dict:
    """(code filename, first line, name) of each unit's function as the notebook's cells define
    it (the name too: a cell's own code also starts at its line 1)."""
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
                out[(f"<cell {cell.id}>", line, fn.name)] = u.name
    return out


def _digest(record) -> bytes | None:
    try:
        return hashlib.sha256(pickle.dumps(record, protocol=5)).digest()
    except Exception:  # a record that does not pickle is judged, never matched
        return None


def grade(ctx: Context, ns: dict, reached=None, skipped=None, keep=None, current=None) -> dict:
    """{test id: {"scores": [per seed set], "diagnoses": [...]}} for a namespace.

    ``reached``: the (test, set, case) triples whose specs run the mutated code; a test with
    none scores as the reference does (1), and in a reached test a case not reached takes
    the reference's record and verdict. A reached case whose record equals the reference's
    (same pickled bytes) takes the reference's verdict without being judged again: a verdict
    depends only on the spec and the record. ``skipped``: (test, set) pairs not graded, score
    None. ``keep``: receives each (test, set)'s records (the reference's, ``prime``).
    A check that raises is a grader bug (an exception, not a score).
    """
    pairs = None if reached is None else {(t, k) for t, k, _ in reached}
    out = {}
    for t in ctx.tests:
        scores, details = [], []
        for k in range(ctx.n_sets):
            if (t["id"], k) in ctx.same_as:
                scores.append(scores[ctx.same_as[(t["id"], k)]])
                details.append(details[ctx.same_as[(t["id"], k)]])
                continue
            if pairs is not None and (t["id"], k) not in pairs:
                scores.append(1.0)
                details.append("not reached")
                continue
            if skipped and (t["id"], k) in skipped:
                scores.append(None)
                details.append("not graded")
                continue
            table, specs = ctx.specs[(t["id"], k)]
            ref = ctx.ref_records.get((t["id"], k)) if reached is not None and ctx.ref_records else None
            records, probed = [], []
            for i, s in enumerate(specs):
                if ref is not None and (t["id"], k, i) not in reached:
                    records.append(copy.deepcopy(ref[i][1]))
                    probed.append(False)
                    continue
                if current is not None:
                    current[0] = (t["id"], k, i)
                # a mutant may write into the arrays it is given: it gets a copy, the judge the
                # spec itself (its content hash is kept by identity)
                records.append(probe(ns, copy.deepcopy(s)))
                probed.append(True)
            if current is not None:
                current[0] = JUDGING
            records = admit(records, len(specs))  # judged as grading judges them
            known = None
            if ref is not None:
                known = [None if p and _digest(r) != ref[i][0] else ctx.reference_case(table, specs, k, i)
                         for i, (r, p) in enumerate(zip(records, probed))]
            if keep is not None:
                keep[(t["id"], k)] = [(_digest(r), r) for r in records]
            r = hidden.judge(table, specs, records, known)
            scores.append(float(r.score))
            details.append(r.diagnosis)
        out[t["id"]] = {"scores": scores, "diagnoses": details}
    return out


# -- one task: a namespace built with overrides, graded, compared with the reference ------

def run_task(ctx: Context, task: dict) -> dict:
    """Grade one namespace. A mutant whose own test does not need the notebook's long cells
    (training) is built without them, and the tests that do need them are not graded for it
    (score None) unless ``full``: its own test is judged exactly as in a full build."""
    if task["id"] == "coverage":  # the reference's branch coverage, beside the mutants
        from . import coverage
        return {"id": "coverage", "status": "ok", "coverage": coverage.measure(ctx, task["units"], task.get("only"))}
    unit = task.get("unit")
    reached = skipped = None
    cells = task.get("cells") or ctx.cells
    if unit is not None:
        long_tests = ctx.needs_long_cells()
        short = not task.get("full") and long_tests and unit.test not in long_tests
        if short:
            cells = [c for c in cells if c.id not in ctx.long_cells]
        reached = ctx.reached(task["units"], unit.name, {c.id for c in cells})
        if not task.get("all_sets_elsewhere"):  # other tests: the suite's own seeds only
            skipped = {(t, k) for t, k, _ in reached if t != unit.test and k > 0}
        if short:
            skipped = (skipped or set()) | {(t, k) for t in long_tests for k in range(ctx.n_sets)}
    ns, errors = build(cells, task.get("overrides"))
    result = {"id": task["id"], "status": "ok", "errors": errors, "tests": grade(ctx, ns, reached, skipped)}
    if unit is not None:
        result["domain"] = domains.compare(ctx, ns, unit, cells)
    return result


# -- the pool --------------------------------------------------------------------------

_CONTEXTS: dict = {}


def _digits_once():
    """In a worker: scikit-learn's digits parsed once, each call given its own copy. Every
    namespace the worker builds loads them in the notebook's data cell (parsing the
    compressed CSV each time was a tenth of a mutant of mlp_training or conv_edf)."""
    try:
        import sklearn.datasets as datasets
    except ImportError:
        return
    load, cache = datasets.load_digits, {}

    def load_digits(*args, **kwargs):
        try:
            key = (args, tuple(sorted(kwargs.items())))
            hash(key)
        except TypeError:
            return load(*args, **kwargs)
        if key not in cache:
            cache[key] = load(*args, **kwargs)
        return copy.deepcopy(cache[key])
    datasets.load_digits = load_digits


def _worker(conn, memory_limit):
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    except (ImportError, ValueError, OSError):
        pass
    os.environ.setdefault("MPLBACKEND", "Agg")
    _digits_once()
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
    """Workers forked from this process; one task at a time each, killed at its deadline.

    Workers are forked when ``map`` first needs them, and ``refresh`` retires them, so the
    next ``map`` forks workers that hold what the parent has prepared since (an assignment's
    ``Context``: specs, the reference's grades and records, where each unit runs): that is
    computed once, not once per worker.
    """

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
        return self

    def __exit__(self, *exc):
        self.refresh()

    def start(self):
        """Fork the workers now (``map`` does, if none are running)."""
        if not self.workers:
            self.workers = [self._spawn() for _ in range(self.n)]

    def refresh(self):
        """Retire the workers; the next ``map`` forks new ones from this process as it is now."""
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
            w["conn"].close()
        self.workers = []

    def map(self, ctx_key: tuple, tasks: list[dict], progress=None, forking: bool = True) -> list[dict]:
        """Each task's result, in order. ``forking=False`` (while this process runs another
        thread, which a forked child must not inherit mid-work): a worker that dies or
        overruns is not replaced, and the tasks left when none remains are not in the result."""
        pending = list(tasks)[::-1]
        results: dict = {}
        self.start()
        while (pending and self.workers) or any(w["task"] for w in self.workers):
            for w in self.workers:
                if w["task"] is None and pending:
                    w["task"] = pending.pop()
                    w["deadline"] = time.monotonic() + self.timeout * w["task"].get("timeout_scale", 1)
                    w["conn"].send((ctx_key, w["task"]))
            busy = [w for w in self.workers if w["task"]]
            ready = wait([w["conn"] for w in busy], timeout=0.5)
            now = time.monotonic()
            failed = []
            for i, w in enumerate(self.workers):
                if not w["task"]:
                    continue
                if w["conn"] in ready:
                    try:
                        res = w["conn"].recv()
                    except (EOFError, OSError):
                        res = {"id": w["task"]["id"], "status": "crashed", "errors": ["worker died"], "tests": {}}
                        failed.append(i)
                    results[res["id"]] = res
                    w["task"] = None
                    if progress:
                        progress(len(results), len(tasks))
                elif now > w["deadline"] or not w["proc"].is_alive():
                    status = "timeout" if w["proc"].is_alive() else "crashed"
                    results[w["task"]["id"]] = {"id": w["task"]["id"], "status": status,
                                                "errors": [f"{status} after {self.timeout:g} s"], "tests": {}}
                    w["task"] = None
                    failed.append(i)
            for i in failed:
                self._retire(self.workers[i])
                self.workers[i] = self._spawn() if forking else None
            self.workers = [w for w in self.workers if w is not None]
        return [results[t["id"]] for t in tasks if t["id"] in results]

    @staticmethod
    def _retire(w):
        if w["proc"].is_alive():
            w["proc"].kill()
        w["proc"].join()
        w["conn"].close()


def context_key(name: str, root=ASSIGNMENTS, n_sets: int = 3) -> tuple:
    return (name, str(root), n_sets)


def loaded(key: tuple) -> Context:
    """The assignment's context in this process (specs built); workers forked afterwards
    (``Pool.start``, ``Pool.refresh``) inherit it."""
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        ctx = _CONTEXTS[key] = Context.load(*key)
    return ctx


def prepared(key: tuple, units) -> Context:
    """The context loaded and primed (the reference built and graded once)."""
    ctx = loaded(key)
    ctx.prime(units)
    ctx.needs_long_cells()
    return ctx


def forget(key: tuple) -> None:
    _CONTEXTS.pop(key, None)
