"""Steps 4-5, run in child and judge: one submission's cells in an isolated child, then every
suite test as trusted spec (parent) -> untrusted probe (child) -> trusted judge (parent).

The child holds the student's code, the given code, the public probe module and, for the
mlp notebooks, the injected training data and test inputs (never the test labels).
Nothing it prints, patches or raises is read as a verdict: the parent only receives the
probe records (JSON + arrays through the runner's codec, never pickle) and judges them.

Runner failures policy (documented in docs via the feedback messages):
- a test whose probe times out, kills the child, floods the output or breaks the protocol
  scores 0 with code ``timeout`` / ``crashed`` / ``output_limit`` / ``protocol_error``;
- the other tests still run: if the child died, a fresh child re-runs the cells (minus the
  cell that killed the previous one, if any) and grading continues with the next test;
- at most ``max_restarts`` restarts and ``budget`` wall seconds per submission; tests left
  after that score 0 with a message saying why they were not run.
"""
from __future__ import annotations

import ast
import functools
import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from grader.runner import CallResult, Limits

from .context import Context
from .notebook import Plan

CHECKS_MODULE = "backprop_checks"
IO_MODULE = "backprop_grading_io"
# Trusted helper sent into the child: a do-nothing matplotlib, parent-side data injection
# (the mlp data cell), and all of one test's probes in one round trip.
IO_SOURCE = '''
import sys
import types


class _Plot:
    """Stands for any matplotlib object: plots are not graded and matplotlib is not in the
    sandbox, so ``plt.plot(...)``, ``fig, ax = plt.subplots()`` etc. do nothing."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Plot()

    def __call__(self, *args, **kwargs):
        return _Plot()

    def __iter__(self):
        return iter((_Plot(), _Plot()))

    def __getitem__(self, key):
        return _Plot()


def _stub(name):
    module = types.ModuleType(name)
    module.__getattr__ = lambda attr: _Plot()
    return module


try:
    import matplotlib  # noqa: F401
except ImportError:
    for _name in ("matplotlib", "matplotlib.pyplot", "matplotlib.cm", "matplotlib.colors"):
        sys.modules[_name] = _stub(_name)
    sys.modules["matplotlib"].pyplot = sys.modules["matplotlib.pyplot"]


def inject(ns, values):
    ns.update(values)


def probe_all(ns, specs):
    probe = sys.modules["backprop_checks"].probe
    return [probe(ns, spec) for spec in specs]
'''

# The runner registers a loaded module in sys.modules only after executing it, but
# @dataclass (used by the public checks) looks its module up while the class is created.
# This prelude registers a stand-in whose __dict__ is the module's namespace meanwhile.
MODULE_PRELUDE = (
    "import sys as _sys\n"
    "class _SelfModule:\n    pass\n"
    "_self_module = _SelfModule()\n_self_module.__dict__ = globals()\n"
    "_sys.modules.setdefault(__name__, _self_module)\n"
    "del _SelfModule, _self_module, _sys\n"
)



# CPython 3.11's ast.parse is not safe to call from two threads at once ("AST constructor
# recursion depth mismatch"); every parse done while submissions are graded takes this lock.
AST_LOCK = threading.Lock()


def child_checks_source(source: str) -> str:
    with AST_LOCK:
        return _child_checks_source(source)


@functools.lru_cache(maxsize=4)
def _child_checks_source(source: str) -> str:
    """The public checks as sent into the child: only what ``probe`` can reach (compiling
    the whole module in every child costs more than running a submission's probes), with
    ``MODULE_PRELUDE`` after the docstring and ``from __future__`` imports."""
    try:
        pruned = probe_only(source)
        compile(pruned, "<backprop_checks>", "exec", dont_inherit=True)
        source = pruned
    except (SyntaxError, ValueError):
        pass
    after = 0
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            after = node.end_lineno
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            break
    lines = source.splitlines(keepends=True)
    return "".join(lines[:after]) + MODULE_PRELUDE + "".join(lines[after:])


def _child_registration(node: ast.stmt) -> ast.stmt:
    """A kind's ``register(Kind(...))`` as the child needs it: name, probe, graph_lists.
    Its judge and expectations run in the parent, so the child need not compile them."""
    call = node.value if isinstance(node, ast.Expr) else None
    if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "register" and len(call.args) == 1
            and isinstance(call.args[0], ast.Call) and getattr(call.args[0].func, "id", None) == "Kind"):
        return node
    kind = call.args[0]
    keep = [k for k in kind.keywords if k.arg in ("probe", "graph_lists")]
    slim = ast.Call(kind.func, kind.args[:1], keep + [ast.keyword("judge", ast.Constant(None))])
    return ast.fix_missing_locations(ast.Expr(ast.Call(call.func, [slim], [])))


def probe_only(source: str, roots=("probe",)) -> str:
    """``source`` without the top-level functions/classes that neither ``roots`` nor any
    top-level statement can reach (names and string constants both count as references);
    kind registrations keep only what the child's ``probe`` uses (``_child_registration``)."""
    tree = ast.parse(source)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    slim = {id(n): _child_registration(n) for n in tree.body}

    def refs(node) -> set[str]:
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
               {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}

    need = set(roots)
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            need |= refs(slim[id(node)])
    todo = [n for n in need if n in defs]
    while todo:
        for name in refs(defs[todo.pop()]) - need:
            need.add(name)
            if name in defs:
                todo.append(name)
    lines = source.splitlines(keepends=True)
    out = []
    for node in tree.body:
        if getattr(node, "name", None) in defs and node.name not in need:
            continue
        if slim[id(node)] is not node:
            out.append(ast.unparse(slim[id(node)]) + "\n")
            continue
        start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        out.append("".join(lines[start - 1:node.end_lineno]))
    return "\n".join(out)


RUNNER_CODES = {"timeout": "timeout", "died": "crashed", "closed": "crashed", "protocol": "protocol_error"}


@dataclass(frozen=True)
class Options:
    limits: Limits = Limits(timeout=5.0)
    budget: float = 120.0            # wall seconds for one submission (cells + all tests)
    max_restarts: int = 3            # fresh children after a death, per submission
    test_output_bytes: int = 1 << 20  # printing more than this while one test runs fails it


@dataclass
class Outcome:
    cells: list[dict] = field(default_factory=list)
    tests: list[dict] = field(default_factory=list)   # Result.to_json() dicts, suite order
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    restarts: int = 0


def runner_result(test: dict, code: str, message: str, details: dict | None = None) -> dict:
    """A failing verdict for a test the child could not answer (same shape as Result.to_json)."""
    return {"test_id": test["id"], "passed": False, "score": 0.0, "message": message,
            "diagnosis": code, "details": dict(details or {})}


def _problem_message(test: dict, code: str, problem, limits: Limits) -> str:
    what = f"test {test['id']!r}" + (f" ({test['target']})" if isinstance(test.get("target"), str) else "")
    if code == "timeout":
        return (f"{what}: your code did not finish within {limits.timeout:g} s. "
                "Look for an infinite loop (e.g. a while loop in backward or at import) or a very slow loop.")
    if code == "crashed":
        return (f"{what}: the process running your code died ({problem}). Likely causes: the memory "
                f"limit ({limits.memory_bytes >> 20} MB), too many processes, or os._exit / a hard crash "
                "in your code.")
    return (f"{what}: your code returned something the grader cannot read ({problem}). "
            "Return NumPy arrays of numbers, not custom objects.")


class _Child:
    """One submission's child process, restartable; knows which cells killed a child."""

    def __init__(self, pool, ctx: Context, plan: Plan, opts: Options, data: dict | None, deadline: float):
        self.pool, self.ctx, self.plan, self.opts, self.data = pool, ctx, plan, opts, data
        self.deadline = deadline
        self.session = None
        self.skip: dict[str, dict] = {}   # cell id -> its result when it killed a child
        self.cell_results: list[dict] = []
        self.restarts = -1
        self.notes: list[str] = []

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> bool:
        """(Re)start a child and run the cells; False when out of restarts or time."""
        while True:
            if self.restarts >= self.opts.max_restarts or time.monotonic() > self.deadline:
                return False
            self.close()
            self.restarts += 1
            self.session = self.pool.session()
            self._load_checks()
            culprit = self._run_cells()
            if culprit is None:
                if self.session.dead is None:
                    return True
                continue
            self._skip(culprit)

    def restart_after_death(self) -> bool:
        """The child died while a test ran: cells that timed out are the likely cause (an
        infinite loop, a fork bomb left behind), so they are skipped from now on."""
        for r in self.cell_results:
            if r["status"] == "timeout" and r["id"] not in self.skip:
                self._skip(r["id"])
        return self.start()

    def _skip(self, cell_id: str) -> None:
        if cell_id in self.skip:
            return
        self.skip[cell_id] = next(r for r in self.cell_results if r["id"] == cell_id)
        self.notes.append(f"cell {cell_id} timed out or killed the process running it; it was skipped "
                          "when the cells were re-run in a fresh process")

    def alive(self) -> bool:
        return self.session is not None and self.session.dead is None

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    # -- cells ------------------------------------------------------------------------------

    def _run_cells(self) -> str | None:
        """Run the plan; return the id of a cell that killed the child (None if it survived)."""
        s = self.session
        if not self._load(IO_MODULE, IO_SOURCE).ok:
            return None
        results: list[dict] = []
        segment: list[dict] = []

        def flush() -> str | None:
            if not segment:
                return None
            for r in s.exec_cells([{"id": c["id"], "source": c["source"]} for c in segment]):
                results.append(_cell_json(r))
            segment.clear()
            if s.dead is None:
                return None
            ran = [r for r in results if not r.get("skipped")]
            dead = next((i for i, r in enumerate(ran) if r["status"] in ("timeout", "crashed")), None)
            if dead is None:
                return None
            # a cell that timed out earlier (a fork bomb's leftovers, a background loop) is a
            # likelier cause than the cell during which the child finally died
            earlier = next((r for r in ran[:dead] if r["status"] == "timeout"), None)
            if earlier is None and dead > 0 and "protocol error" in str(ran[dead].get("error")):
                # garbage on the channel comes from processes the previous cell forked
                earlier = ran[dead - 1]
            return (earlier or ran[dead])["id"]

        culprit = None
        for cell in self.plan.cells:
            if cell["id"] in self.skip:
                first = self.skip[cell["id"]]
                results.append(dict(first, skipped=True, error=f"{first['error']} (skipped when the cells "
                                                               "were re-run in a fresh process)"))
                continue
            if cell.get("inject"):
                culprit = flush()
                if culprit:
                    break
                r = s.call(IO_MODULE, "inject", self.data["inject"])
                results.append({"id": cell["id"], "status": "ok" if r.ok else "error",
                                "error": None if r.ok else f"data injection failed: {r.error}",
                                "injected": "data (training set and test inputs, no test labels)"})
                continue
            segment.append(cell)
        if culprit is None:
            culprit = flush()
        self.cell_results = results
        return culprit

    def _load_checks(self) -> None:
        """Before any student code: a failure here is a grader bug, not the student's."""
        r = self._load(CHECKS_MODULE, child_checks_source(self.ctx.checks.public_source))
        if not r.ok:
            raise RuntimeError(f"the public checks do not load in a fresh child: {r.error}")


    def _load(self, name: str, source: str):
        if name in getattr(self.pool, "preloaded", ()):
            return CallResult(True)  # the fork server loaded it before this child existed
        return self.session.load_module(name, source)


def preload_modules(pool, ctx: Context) -> None:
    """Load the probe modules once in the fork server instead of compiling them in every child.

    A module that fails to preload is simply loaded by each session, as before.
    """
    pool.preload(CHECKS_MODULE, child_checks_source(ctx.checks.public_source))
    pool.preload(IO_MODULE, IO_SOURCE)


def _cell_json(r) -> dict:
    status = {"died": "crashed"}.get(r.status, r.status)
    if status == "ok" and r.neutralised:
        status = "neutralised"
    out = {"id": r.id, "status": status, "error": None if r.error is None else str(r.error)[:2000]}
    if r.neutralised:
        out["neutralised"] = list(r.neutralised)
    if r.error is not None and r.error.traceback:
        out["traceback"] = r.error.traceback[-2000:]
    return out


def run_submission(pool, ctx: Context, plan: Plan, opts: Options, data: dict | None = None) -> Outcome:
    """Cells in a fresh child, then every suite test; never raises for student behaviour."""
    deadline = time.monotonic() + opts.budget
    child = _Child(pool, ctx, plan, opts, data, deadline)
    out = Outcome()
    try:
        child.start()
        for test in ctx.tests:
            if not child.alive() and not child.restart_after_death():
                why = (f"not run: the submission used its whole time budget of {opts.budget:g} s"
                       if time.monotonic() > deadline else
                       f"not run: the process running your code died {child.restarts + 1} times")
                code = "timeout" if time.monotonic() > deadline else "crashed"
                out.tests.append(runner_result(test, code, f"test {test['id']!r} {why}"))
                continue
            if time.monotonic() > deadline:
                out.tests.append(runner_result(test, "timeout", f"test {test['id']!r} not run: the submission "
                                               f"used its whole time budget of {opts.budget:g} s"))
                continue
            out.tests.append(_run_test(child, ctx, test, opts, data))
        out.cells = child.cell_results
        if child.session is not None and child.session.output().truncated:
            out.flags.append("output truncated: the submission printed more than "
                             f"{opts.limits.output_bytes >> 10} KB")
    finally:
        if child.session is not None:
            total = child.session.output().total_bytes
            if total > opts.limits.output_bytes:
                msg = f"output truncated: printed {total / 1e6:.1f} MB in total"
                out.flags = [f for f in out.flags if not f.startswith("output truncated")] + [msg]
        child.close()
    out.notes += child.notes
    out.restarts = max(child.restarts, 0)
    return out


def _run_test(child: _Child, ctx: Context, test: dict, opts: Options, data: dict | None) -> dict:
    s = child.session
    specs, wired = ctx.specs(test)
    before = s.output().total_bytes
    batch = s.call(IO_MODULE, "probe_all", wired)
    if batch.ok and isinstance(batch.value, list) and len(batch.value) == len(specs):
        if s.output().total_bytes - before > opts.test_output_bytes:
            return _output_limit(test, opts)
        return judge_safely(ctx, test, specs, batch.value)
    if not batch.ok and batch.error.kind != "student" and not (batch.error.kind == "timeout" and child.alive()):
        code = RUNNER_CODES.get(batch.error.kind, "crashed")
        return runner_result(test, code, _problem_message(test, code, batch.error, opts.limits))
    # something escaped the probes (a BaseException from student code, a sabotaged helper)
    # or all of them together were too slow: probe spec by spec, each with its own verdict
    records, problem = [], None
    for spec in specs:
        r = s.call(CHECKS_MODULE, "probe", spec)
        if r.ok:
            records.append(r.value)
        elif r.error.kind == "student":
            # the probe itself raised (SystemExit, a BaseException from student code, a
            # sabotaged probe): an exception as data, judged like any other
            records.append({"error": {"type": r.error.type, "message": r.error.message}})
        else:
            problem = r.error
            break
        if s.output().total_bytes - before > opts.test_output_bytes:
            return _output_limit(test, opts)
    if problem is not None:
        code = RUNNER_CODES.get(problem.kind, "crashed")
        return runner_result(test, code, _problem_message(test, code, problem, opts.limits),
                             {"spec_index": len(records)})
    return judge_safely(ctx, test, specs, records)


def _output_limit(test: dict, opts: Options) -> dict:
    return runner_result(test, "output_limit", f"test {test['id']!r}: your code printed more than "
                         f"{opts.test_output_bytes >> 10} KB while being tested; remove print calls from "
                         "forward/backward and loops.")


def judge_safely(ctx: Context, test: dict, specs, records) -> dict:
    """The trusted judge; a judge failure on odd records is a failing verdict, not a crash."""
    try:
        result = ctx.checks.judge(test, specs, records)
        d = result.to_json() if hasattr(result, "to_json") else dict(result)
    except Exception as e:  # noqa: BLE001 - a grader bug must not sink the batch
        return runner_result(test, "protocol_error",
                             f"test {test['id']!r}: the values your code returned could not be judged "
                             "(wrong types or shapes?)", {"grader_error": f"{type(e).__name__}: {e}"[:500]})
    score = d.get("score")
    if not isinstance(score, (int, float)) or not math.isfinite(score):
        score = 0.0
    d["score"] = min(1.0, max(0.0, float(score)))
    d["passed"] = bool(d.get("passed")) and d["score"] >= 1.0
    d["test_id"] = test["id"]
    return d


# -- the mlp accuracy test: the parent measures, the labels never enter the child ------------

_data_lock = threading.Lock()
_data_cache: dict = {}


def mlp_data(ctx: Context) -> dict | None:
    """Training data + test inputs for the child; the labels stay with the checks' judge."""
    tests = [t for t in ctx.tests if t["check"] == "mlp_accuracy"]
    if not tests:
        return None
    seed = 0  # the split the checks' mlp_accuracy spec and judge use
    with _data_lock:
        if seed not in _data_cache:
            from reference.mlp import load_digits_split

            X_train, y_train, X_test, _ = load_digits_split(seed=seed)
            _data_cache[seed] = {
                # y_test in the child is a placeholder of -1s: code that prints an accuracy
                # still runs, and the real labels stay in the parent
                "inject": {"X_train": X_train, "y_train": y_train, "X_test": X_test,
                           "y_test": np.full(len(X_test), -1, dtype=np.int64)},
            }
        return _data_cache[seed]
