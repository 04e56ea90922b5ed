"""The trusted half of the checks: expectations from the reference, hidden suites.

``build_specs(test, which)`` turns a suite.toml test into specs (plain data for the
child; ``seeded(test, key)`` first gives a submission its own hidden seeds), ``judge(test, specs, records)`` compares the child's records with the
reference's behaviour on the same specs, ``run_hidden(ns, test)`` does both in one
process (nbgrader's hidden cells, our tests). Both dispatch through the registry of
kinds (``registry.py``); ``backward_loop`` and the mlp kinds have trusted steps here
(per-order expectations, the held-out data). Records are untrusted: every kind's judge
validates them and turns anything malformed into a failing case.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import pickle
import textwrap
import threading
from collections.abc import Callable

import numpy as np

import reference
from reference import core as ref_core
from reference import mlp as ref_mlp

from . import base, compare, graphs
from .backward_judge import judge_backward
from .backward_loop import make_node, node_classes
from .base import CaseResult, Result, _fail, _quiet, combine, probe
from .records import admit
from .contract import ALL_CLASSES
from .cnn import judge_cnn_learning
from .mlp import charge_own_errors, judge_mlp_accuracy, judge_mlp_learning
from .mlp_final import judge_final_follows
from .mlp_net import MLP_UNIT_KINDS, mlp_final_spec
from .registry import kind
from .types import LoopSpec, Namespace, Record, Spec

# The component classes each assignment's notebook defines (graphs use only these).
ASSIGNMENT_CLASSES = {
    "scalar_backprop": ("Add", "Mul", "Square", "Sigmoid", "ReLU"),
}


def _params(test: dict, which: str) -> dict:
    if which not in ("hidden", "visible"):
        raise ValueError(f"which must be 'hidden' or 'visible', not {which!r}")
    return dict(test.get(which) or {})


def _classes(test: dict, p: dict) -> tuple[str, ...]:
    return tuple(test.get("classes") or p.get("classes")
                 or ASSIGNMENT_CLASSES.get(test.get("assignment"), ALL_CLASSES))


# ----------------------------------------------------------------------------------
# Hidden seeds per submission: the one place where a key changes a suite's seeds
# ----------------------------------------------------------------------------------

def mixed_seed(assignment: str, test_id: str, key: int, seed: int) -> int:
    """The hidden seed that suite seed ``seed`` of a test becomes under ``key``, in [0, 2**31 - 1).

    ``key`` is a submission's (``grader.grading.seeds``: from the course secret, the student
    and the notebook's hash) or an audit seed set's number: the audit's sets are the keys
    1, 2, ..., so it checks the suite under exactly the mixing grading uses.
    """
    h = hashlib.sha256(f"{assignment}:{test_id}:{key}:{seed}".encode()).digest()
    return int.from_bytes(h[:4], "little") % (2 ** 31 - 1)


# The accuracy test's re-drawn digits task: a key picks one of the task seeds 0 .. 63, each of
# which the reference learns with a margin (tests/grading/test_hidden_seeds.py). Over any seed
# about one task in a hundred lands in the tail where a correct network falls under the target.
MLP_TASK_SEEDS = 64


def seeded(test: dict, key: int | None) -> dict:
    """The test's table with every hidden seed mixed with ``key`` (None: the suite's own).

    Only the hidden seeds change: the visible ones are printed in the student's notebook.
    A test with fixed cases and no seed gets one anyway; its specs simply do not use it.
    """
    t = copy.deepcopy(test)
    if key is None:
        return t
    h = t.setdefault("hidden", {})
    if "seeds" in h:
        h["seeds"] = [mixed_seed(t.get("assignment", ""), t["id"], key, s) for s in h["seeds"]]
    else:
        h["seed"] = mixed_seed(t.get("assignment", ""), t["id"], key, h.get("seed", 0))
        if t.get("check") == "mlp_accuracy":
            h["seed"] %= MLP_TASK_SEEDS
    return t


def hidden_seeds(test: dict) -> list:
    """The hidden seeds a test table's specs are built from (as its kind reads them)."""
    h = test.get("hidden") or {}
    return list(h.get("seeds") or [h.get("seed", 0)])


def build_specs(test: dict, which: str = "hidden") -> list:
    """Specs (JSON data + NumPy arrays) for one suite test."""
    p = _params(test, which)
    check = test["check"]
    if check == "mlp_accuracy":
        if p.get("model") == "cnn":  # conv_edf: the given CNN retrained by the student's epoch
            return cnn_learning_specs(p)
        return mlp_learning_specs(p)
    k = kind(check)
    if k.specs is None:
        raise ValueError(f"check {check!r} has no trusted specs")
    return k.specs(test, p, classes=_classes(test, p))


# ----------------------------------------------------------------------------------
# Expectations from the reference
# ----------------------------------------------------------------------------------

# Every submission of a class gets the same specs, so the reference's expectation for
# a spec (and, for loop checks, a processing order) is computed once and shared. The
# lock makes check-and-fill atomic for grading's worker threads, and keeps them from
# clearing and refilling the reference's module-level graph lists under each other.
_MEMO: dict = {}
_MEMO_SIZE = 4096
_REFERENCE_LOCK = threading.Lock()


def spec_key(spec: Spec) -> str:
    """A content hash of a spec: equal specs (arrays compared by bytes) share a key.

    The spec is the grader's own data; it is serialised here only to be hashed (one C-level
    pass instead of a Python walk), never loaded back.
    """
    return hashlib.sha256(pickle.dumps(spec, protocol=5)).hexdigest()


# A batch judges every submission against the same spec objects (``Context.specs`` builds
# them once), and a spec is not changed once built: its content hash is kept by identity,
# so each spec is pickled and hashed once per batch instead of once per submission. The
# table holds the specs themselves, so an id is never reused while it is in the table.
_KEYS: dict[int, tuple[object, str]] = {}
_KEYS_SIZE = 2048


def _spec_key_of(spec: Spec) -> str:
    hit = _KEYS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    key = spec_key(spec)
    if len(_KEYS) >= _KEYS_SIZE:
        _KEYS.pop(next(iter(_KEYS)))
    _KEYS[id(spec)] = (spec, key)
    return key


def _memo(kind: str, spec: Spec, compute: Callable[[], dict], extra: tuple = ()) -> dict:
    """``compute()``, once per (kind, spec content, extra); expectations are never mutated."""
    with _REFERENCE_LOCK:
        sk = _spec_key_of(spec)
    key = (kind, sk, extra)
    with _REFERENCE_LOCK:
        if key not in _MEMO:
            if len(_MEMO) >= _MEMO_SIZE:
                _MEMO.pop(next(iter(_MEMO)))
            _MEMO[key] = compute()
        return _MEMO[key]


def backward_expectation(spec: LoopSpec, order: list[int]) -> dict:
    """The reference's grads after each step of the (valid prefix of the) student's order."""
    n_ok, _ = graphs.valid_prefix(spec, order)
    comps = graphs._components(spec)
    cls = node_classes(reference, spec)
    with _quiet(), base._graph_lists(ref_core):
        objs = {}
        for n in spec["nodes"]:
            if n["kind"] == "Input":
                objs[n["name"]] = reference.Input(np.array(spec["values"][n["name"]]))
            elif n["kind"] == "Parameter":
                objs[n["name"]] = reference.Parameter(np.array(spec["values"][n["name"]], dtype=float))
            else:
                objs[n["name"]] = make_node(cls[n["kind"]], n, objs)
        cobjs = [objs[n["name"]] for n in comps]
        for c in cobjs:
            c.forward()
        for o in objs.values():
            o.grad = ref_core.zeros_like_grad(o.value)
        objs[spec["loss"]].grad = np.ones_like(objs[spec["loss"]].grad)
        judged = graphs._judged(spec)
        steps, ones = [], {}
        for k, i in enumerate(order[:n_ok]):
            c = cobjs[i]
            args = list(dict.fromkeys(comps[i]["args"]))
            saved = {a: objs[a].grad for a in args}
            saved_up = c.grad
            for a in args:  # the component's contribution with upstream ones
                objs[a].grad = ref_core.zeros_like_grad(objs[a].value)
            c.grad = np.ones_like(saved_up)
            c.backward()
            for a in args:
                ones[(k, a)] = np.array(objs[a].grad, dtype=float)
                objs[a].grad = saved[a]
            c.grad = saved_up
            c.backward()
            steps.append({name: np.array(objs[name].grad, dtype=float) for name in judged})
        values = {n["name"]: np.array(objs[n["name"]].value) for n in comps}
    allgrads = [g for s in steps for g in s.values()]
    return {"values": values, "steps": steps, "ones": ones, "rtol": compare.RTOL_EXACT, "atol": compare.exact_atol(allgrads)}


def _reference_record(spec: dict) -> dict:
    rec = probe(reference, spec)
    if "error" in rec:
        raise RuntimeError(f"the reference failed on its own spec: {rec['error']}")
    return rec


def exact_expectation(spec: dict) -> dict:
    """The reference's record on ``spec``, as its kind turns it into an expectation."""
    return kind(spec["check"]).exact(spec, _reference_record(spec))


def judge_case(test: dict, spec: dict, record: Record) -> CaseResult:
    """One spec's verdict, with the reference's expectation."""
    check = spec["check"]
    if not isinstance(record, dict):
        return _fail("protocol_error", test.get("id", "test"), "the probe record is not a dict.")
    if check == "backward_loop":
        order = graphs.record_order(record)
        # the expectation depends only on the valid prefix of the order (each component at
        # most once), which also bounds the memo key whatever length a record claims
        prefix = tuple(order[:graphs.valid_prefix(spec, order)[0]])
        expected = _memo(check, spec, lambda: backward_expectation(spec, list(prefix)), prefix)
        return judge_backward(spec, record, expected)
    if check == "mlp_accuracy":
        target = float(_params(test, "hidden").get("target", 0.95))
        if spec.get("cnn_learning"):
            _, _, X_eval, y_eval = _image_task(int(spec["seed"]))
            return judge_cnn_learning(spec, record, X_eval, y_eval, target, cnn_logits)
        if spec.get("cnn_final"):
            return judge_final_follows(spec, record)
        if not spec.get("learning"):  # predict(X_test) of split 0: y_test stays in the parent
            return judge_mlp_accuracy(spec, record, ref_mlp.load_digits_split(0)[3], target)
        _, _, X_eval, y_eval = _digits_task(int(spec["seed"]))
        return judge_mlp_learning(spec, record, X_eval, y_eval, target)
    k = kind(check)
    if check in MLP_UNIT_KINDS:  # the reference's mlp functions run as notebook cells, not from the package
        return k.judge(spec, record, _memo(check, spec, lambda: mlp_expectation(spec)))
    if k.exact is None:
        raise ValueError(f"check {check!r} has no trusted expectation")
    return k.judge(spec, record, _memo(check, spec, lambda: exact_expectation(spec)))


# -- mlp_training: the reference's functions in a notebook-like namespace ------------------------

@functools.lru_cache(maxsize=4)
def _digits_task(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The re-drawn digits task of a hidden seed; its held-back half never leaves the parent."""
    return ref_mlp.load_digits_task(seed)


def mlp_learning_specs(p: dict) -> list:
    """Training data of the re-drawn task (inputs and labels of its training half only), and
    the case of the notebook's ``predict`` (known weights set into the final network)."""
    seed = int(p.get("seed", 1))
    X_train, y_train, _, _ = _digits_task(seed)
    return [{"check": "mlp_accuracy", "learning": True, "X": X_train, "y": y_train, "seed": seed},
            mlp_final_spec(seed)]


# -- conv_edf: the given CNN retrained by the student's train_cnn_epoch --------------------------

CNN_SETTINGS = {"filters": 16, "epochs": 8, "eta": 0.3, "batch_size": 32}


@functools.lru_cache(maxsize=4)
def _image_task(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The re-drawn image task of a hidden seed; its held-back half never leaves the parent."""
    from reference import cnn as ref_cnn

    return ref_cnn.load_image_task(seed)


def cnn_learning_specs(p: dict) -> list:
    """The training half of the re-drawn image task with the grader's training settings (the
    suite's, else ``CNN_SETTINGS``), and the case of the notebook's ``predict``."""
    seed = int(p.get("seed", 1))
    X_train, y_train, _, _ = _image_task(seed)
    settings = {k: type(v)(p.get(k, v)) for k, v in CNN_SETTINGS.items()}
    rng = np.random.default_rng([seed, 7])
    return [{"check": "mlp_accuracy", "cnn_learning": True, "X": X_train, "y": y_train, "seed": seed, **settings},
            {"check": "mlp_accuracy", "cnn_final": True, "seed": int(rng.integers(1 << 30)),
             "X": rng.uniform(0.0, 1.0, (40, 64))}]


def cnn_logits(params: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    """The logits of the reference CNN with parameters ``params`` (K, c, W, b) on images X."""
    from reference import cnn as ref_cnn

    with _REFERENCE_LOCK, _quiet(), base._graph_lists(ref_core):
        model = ref_cnn.build_cnn(filters=params[0].shape[0])
        for p, v in zip(model.params, params):
            p.value = np.array(v, dtype=np.float64)
        out = []
        for rows in np.array_split(np.arange(len(X)), max(1, len(X) // 256)):
            model.x.set(X[rows])
            model.labels.set(np.zeros(len(rows), dtype=np.int64))
            ref_core.Forward()
            out.append(np.array(model.logits.value))
        return np.concatenate(out)


@functools.lru_cache(maxsize=1)
def _reference_notebook() -> dict:
    return _reference_namespace()


def _reference_namespace(**names: object) -> dict:
    """The names an mlp notebook defines, from the reference by name, run as notebook cells
    (so ``train`` finds ``train_step`` in the namespace, as in a notebook), with ``names``."""
    ns = {name: getattr(reference, name) for name in reference.__all__}
    ns.update(names)
    ns.update(np=np, ACTIVATIONS=ref_mlp.ACTIVATIONS, __name__=ref_mlp.__name__)  # @dataclass looks it up
    exec("from dataclasses import dataclass, field\n", ns)
    for name in ("MLP", "build_mlp", "train_step", "train"):
        exec(compile(textwrap.dedent(inspect.getsource(getattr(ref_mlp, name))), ref_mlp.__file__, "exec"), ns)
    return ns


@functools.lru_cache(maxsize=64)
def _reference_accuracy(seed: int, settings: tuple) -> float:
    sizes, act, eta, epochs, batch = settings
    spec = mlp_learning_specs({"seed": seed})[0]
    ns = _reference_namespace(final_settings={"sizes": sizes, "activation": act, "eta": eta,
                                              "epochs": epochs, "batch_size": batch})
    with _REFERENCE_LOCK:
        rec = probe(ns, spec)
    _, _, X_eval, y_eval = _digits_task(seed)
    r = judge_mlp_learning(spec, rec, X_eval, y_eval, 0.0)
    return float(r.details.get("accuracy", 0.0))


def reference_accuracy(spec: dict, settings: tuple) -> float | None:
    """The accuracy correct functions reach on a learning spec's task with ``settings`` (the
    student's final_settings, already checked against the notebook's limits); trusted, in the
    parent, once per task and settings."""
    try:
        return _reference_accuracy(int(spec["seed"]), tuple(settings))
    except Exception:  # noqa: BLE001 - no excuse when the reference cannot tell
        return None


def mlp_expectation(spec: dict) -> dict:
    if spec.get("case") == "final":
        return {}  # the judge checks the notebook's predict against its own final network
    rec = probe(_reference_notebook(), spec)
    if "error" in rec:
        raise RuntimeError(f"the reference failed on its own spec: {rec['error']}")
    return kind(spec["check"]).exact(spec, rec)


def judge_cases(test: dict, specs: list[Spec], records: list[Record], known: list | None = None) -> list[CaseResult]:
    """One verdict per spec; ``known[i]``, where given, is case i's verdict already (the
    audit's: a record equal to one judged before)."""
    known = known or [None] * len(specs)
    with _quiet():  # once per test: entering catch_warnings per case was a tenth of judging
        return [c if c is not None else judge_case(test, s, r) for s, r, c in zip(specs, records, known)]


def judge(test: dict, specs: list[Spec], records: list[Record], known: list | None = None) -> Result:
    """The test's Result: one verdict per spec, score = fraction passed."""
    tid = test.get("id", test.get("target", "test"))
    if not isinstance(records, list) or len(records) != len(specs):
        return Result(tid, False, 0.0, "the grading child returned the wrong number of records.",
                        "protocol_error", {})
    cases = judge_cases(test, specs, records, known)
    with _quiet():
        if test.get("check") == "mlp_accuracy":
            target = float(_params(test, "hidden").get("target", 0.95))
            cases = charge_own_errors(specs, records, cases, target, reference_accuracy)
        return combine(tid, cases)


def run_hidden(ns: Namespace, test: dict, which: str = "hidden", key: int | None = None) -> Result:
    """build_specs + probe + judge in one process (trusted setting only); ``key``: a
    submission's hidden seeds (``seeded``)."""
    specs = build_specs(seeded(test, key) if which == "hidden" else test, which)
    # records enter the judge as grading's do: through ``admit``
    return judge(test, specs, admit([probe(ns, s) for s in specs], len(specs)))
