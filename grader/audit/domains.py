"""Equivalence by evaluation: a mutant against the reference on random inputs.

The inputs come from the units' declared domains here, never from the suite under audit (a
suite whose cases all sit on one side of a kink would otherwise vouch for itself):

- components: operands of many shapes (broadcast pairs, matmul pairs, 0-d) at several scales;
  an operand where the reference is not finite (``Log`` of a negative) is drawn positive; a
  constructor with keyword arguments or more than two operands (``Conv2D(x, W, b, stride=,
  padding=)``) gets the check's default shapes with every axis perturbed and keyword values
  around their defaults, kept where the reference accepts them;
  grads pre-filled with noise and a random upstream grad, then forward value, every operand's
  grad and the operands' values (unchanged?) are compared;
- ``Backward``: random graphs of the assignment's components with shared subexpressions,
  garbage in every grad beforehand, ``Backward`` called twice;
- ``Dual``: every operation, mixed with plain numbers on both sides, operands checked unchanged;
- ``Var``: expressions with shared subexpressions, ``backward()`` twice;
- functions: random arguments (``logistic_ls_grads``, ``unbroadcast``) or random functions
  and points (``derivative``, ``gradient_fwd``, ``gradient_rev``);
- ``mlp_training``: the trained network's logits, predictions and history (deterministic).

Outputs identical to ~1e-12 (relative) on every sample: equivalent. Different on every
sample: wrong on the whole domain (it should earn 0 on its test).
"""
from __future__ import annotations

import inspect
import math

import numpy as np

from grader.checks.component import DEFAULT_SHAPES, _normalise_cases
from grader.checks.contract import OPERANDS

from .namespace import build

RTOL = 1e-12
N_SEEDS = 2

UNARY_SHAPES = [(), (5,), (4, 3), (2, 3, 4)]
BINARY_SHAPES = [((4, 3), (4, 3)), ((4, 3), (3,)), ((3,), (4, 3)), ((4, 1), (1, 3)), ((4, 3), ()), ((), ()),
                 ((4, 3), (3, 2)), ((3,), (3, 2)), ((2, 3, 4), (3, 1)), ((5,), (5,)), ((1, 4), (4, 1))]
LABEL_SHAPES = [((4, 3), (4,)), ((1, 5), (1,)), ((6, 2), (6,))]
SCALES = (0.6, 2.5)
LOOP_CLASSES = ("Add", "Mul", "Square", "Sigmoid", "ReLU", "Exp", "Tanh")

FUNCTIONS_1 = ["lambda x: x * x + 1.0", "lambda x: sin(x) * exp(-x) + log(2 + cos(x))",
               "lambda x: tanh(2 * x) / sigmoid(x) - x / 4", "lambda x: 1 / (1 + x ** 2) - 3 * x",
               "lambda x: (x - 2) * (3 - x)", "lambda x: 5.0", "lambda x: x"]
FUNCTIONS_N = ["lambda a, b: a * b + sin(a)", "lambda a, b, c: a * b * c - a / c + b ** 3",
               "lambda a, b, c, d: exp(a - b) * tanh(c) + log(1 + d * d) - sigmoid(a * d)",
               "lambda x, y: (x * y) * (x * y) + x * x", "lambda a, b: 2 - a + 0 * b", "lambda a, b: 4.0",
               "lambda x, y: (lambda s: s * sigmoid(s) - s / (1 + y * y) + (-s))(x * y + x)",
               "lambda x: (lambda u: u * u + sin(u) - cos(u) / 2)(x * x + 1)"]


class _Leaf:
    def __init__(self, value):
        self.value = value
        self.grad = None


def _copy(x):
    return np.array(x, copy=True) if isinstance(x, np.ndarray) else x


def _run(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as e:  # noqa: BLE001 - the mutant's behaviour, compared as data
        return ("raises", type(e).__name__)


def same(a, b) -> tuple[bool, float]:
    """(identical to ~1e-12 relative, largest relative difference) of two nested outputs."""
    if isinstance(a, tuple) and len(a) == 2 and a[0] in ("ok", "raises"):
        if a[0] != b[0]:
            return False, math.inf
        return same(a[1], b[1]) if a[0] == "ok" else (a[1] == b[1], 0.0 if a[1] == b[1] else math.inf)
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False, math.inf
        return _all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return False, math.inf
        return _all(same(x, y) for x, y in zip(a, b))
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        ok = type(a) is type(b) and a == b
        return ok, (0.0 if ok else math.inf)
    if isinstance(a, (float, int)) and isinstance(b, (float, int)) and not isinstance(a, bool):
        if a == b or (math.isnan(a) and math.isnan(b)):
            return True, 0.0
        err = abs(a - b) / (1.0 + abs(b))
        if not math.isfinite(err):
            return False, math.inf
        return err <= RTOL, err
    try:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False, math.inf
    if x.shape != y.shape:
        return False, math.inf
    if x.size == 0:
        return True, 0.0
    if not np.array_equal(np.isnan(x), np.isnan(y)):
        return False, math.inf
    if np.array_equal(x, y, equal_nan=True):
        return True, 0.0
    x, y = np.where(np.isnan(x), 0.0, x), np.where(np.isnan(y), 0.0, y)
    with np.errstate(all="ignore"):
        err = np.abs(x - y) / (1.0 + np.abs(y))
        err = float(np.max(np.where(np.isfinite(err), err, np.where(x == y, 0.0, np.inf))))
    return err <= RTOL, err


def _all(pairs) -> tuple[bool, float]:
    ok, worst = True, 0.0
    for o, e in pairs:
        ok, worst = ok and o, max(worst, e)
    return ok, worst


# -- components ------------------------------------------------------------------------

def max_rank(tests) -> int:
    """The largest operand rank the assignment's component tests declare (0: every value is a
    scalar, as in scalar_backprop). Only the rank is taken from the suite, never values."""
    ranks = [len(shape) for t in tests if t.get("check") == "component"
             for part in ("hidden", "visible") for case in (t.get(part) or {}).get("shapes") or []
             for shape in (case if case and isinstance(case[0], list) else [case])]
    return max(ranks, default=3)


def constructor(cls, operands: tuple | None = None) -> tuple[list[str], dict]:
    """(operand parameters, {keyword: default}) of a component class's constructor.

    The operands are the contract's (``contract.OPERANDS``) when it declares the class, else the
    parameters without a default; every parameter with a default is a keyword argument
    (``Conv2D``'s stride and padding, ``MaxPool2D``'s size and stride).
    """
    params = [p for name, p in inspect.signature(cls.__init__).parameters.items() if name != "self"
              and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    n = len(operands) if operands else sum(1 for p in params if p.default is p.empty)
    return [p.name for p in params[:n]], {p.name: p.default for p in params[n:] if p.default is not p.empty}


def _keyword_values(default) -> list:
    """Values a keyword argument is drawn from, around its default (the reference rejects the
    invalid ones: a stride of 0): an integer d gives d-1..d+2 (from 0), a bool both, a float
    half, same and double; anything else only itself."""
    if isinstance(default, bool):
        return [False, True]
    if isinstance(default, int):
        return list(range(max(0, default - 1), default + 3))
    if isinstance(default, float):
        return [default / 2, default, default * 2]
    return [default]


def _perturbed(base: list[tuple], rng) -> list[tuple]:
    """Every axis of every operand moved by -1..+2 (at least 1): axes of equal length mostly
    move together (so matching channels still match), each one alone with probability 0.3 (so
    coincidences such as a square image break); the reference then judges consistency."""
    shared = {n: int(rng.integers(-1, 3)) for shape in base for n in shape}
    return [tuple(max(1, int(n) + (shared[n] if rng.random() < 0.7 else int(rng.integers(-1, 3))))
                  for n in shape) for shape in base]


def _values(shapes, labels: list[int], rng, scale: float) -> list:
    vals = []
    for i, shape in enumerate(shapes):
        if i in labels:
            vals.append(rng.integers(0, shapes[0][-1], size=shape).astype(np.int64))
        else:
            vals.append(rng.normal(0.0, scale, size=shape))
    return vals


def _finished(ref_ns, cls_name, vals, kw, rng):
    """(vals, pre, up, kw) when the reference runs forward and backward on ``vals`` with a
    finite, non-empty value (an operand where it is not finite is drawn positive once), else None."""
    for _ in range(2):
        ref = _component(ref_ns, cls_name, vals, None, None, kw)
        if ref[0] == "ok" and np.size(ref[1][0]) > 0 and np.all(np.isfinite(np.asarray(ref[1][0], dtype=float))):
            break
        vals = [np.abs(v) + 0.1 if v.dtype.kind == "f" else v for v in vals]
    else:
        return None
    pre = [rng.normal(size=np.shape(v)) if v.dtype.kind == "f" else np.zeros(np.shape(v)) for v in vals]
    up = rng.normal(size=np.shape(ref[1][0]))
    if _component(ref_ns, cls_name, vals, pre, up, kw)[0] != "ok":
        return None  # operands the reference's backward rejects (a bias broadcast from (1,))
    return vals, pre, up, kw


def _component_samples(ref_ns, cls_name, rank=3, operands=None, base_shapes=None, extra_shapes=()):
    """Samples (operand values, prior grads, upstream grad, keyword arguments) of a component.

    A constructor of one or two operands and no keyword argument gets the shape tables above
    (unary, broadcast and matmul pairs, labels). Any other (``Conv2D(x, W, b, stride=,
    padding=)``) gets ``base_shapes`` (the check's default cases for the class, else the
    suite's), every axis perturbed at random, with keyword arguments drawn around their
    defaults; the reference keeps the combinations it accepts.
    """
    cls = ref_ns[cls_name]
    params, keywords = constructor(cls, operands)
    labels = [i for i, p in enumerate(params) if p == "labels"]
    if keywords or len(params) not in (1, 2):
        return _general_samples(ref_ns, cls_name, keywords, labels, base_shapes or [[(4, 3)] * len(params)],
                                extra_shapes)
    if labels:
        cases = LABEL_SHAPES
    elif len(params) == 2:
        cases = BINARY_SHAPES
    else:
        cases = [(s,) for s in UNARY_SHAPES]
    cases = [c for c in cases if all(len(s) <= rank for s in c)] or [tuple(() for _ in params)]
    n_seeds = max(N_SEEDS, 12 // len(cases))  # scalars: one shape, so more draws
    out = []
    for ci, shapes in enumerate(cases):
        for seed in range(n_seeds):
            rng = np.random.default_rng(1000 * ci + seed)
            vals = _values(shapes, labels, rng, SCALES[seed % len(SCALES)])
            smp = _finished(ref_ns, cls_name, vals, {}, rng)
            if smp is not None:
                out.append(smp)
    return out


GENERAL_SAMPLES = 16   # per class with keyword arguments or several operands
GENERAL_TRIES = 400


def _general_samples(ref_ns, cls_name, keywords: dict, labels: list[int], bases: list, extra=()) -> list:
    """Perturbed base shapes and keyword arguments around their defaults: the first draws are
    the bases themselves under each keyword's every value in turn (so each value is seen even
    where random shapes rarely fit), then random combinations; ``extra`` shapes (the suite's
    own cases) once each, with the keywords' defaults."""
    out, seen = [], set()
    for i, shapes in enumerate(extra):
        rng = np.random.default_rng(104729 + i)
        smp = _finished(ref_ns, cls_name, _values([tuple(s) for s in shapes], labels, rng, SCALES[i % len(SCALES)]),
                        dict(keywords), rng)
        if smp is not None:
            out.append(smp)
    choices = {k: _keyword_values(d) for k, d in keywords.items()}
    fixed = len(bases) * max((len(v) for v in choices.values()), default=1)
    floor = len(out)
    for tries in range(GENERAL_TRIES):
        if len(out) >= floor + GENERAL_SAMPLES + fixed:
            break
        rng = np.random.default_rng(7919 + tries)
        base = [tuple(s) for s in bases[tries % len(bases)]]
        shapes = base if tries < fixed else _perturbed(base, rng)
        kw = {k: v[(tries // len(bases) + i) % len(v)] if tries < fixed else v[int(rng.integers(len(v)))]
              for i, (k, v) in enumerate(choices.items())}
        key = (tuple(shapes), tuple(sorted(kw.items())))
        if key in seen:
            continue
        seen.add(key)
        smp = _finished(ref_ns, cls_name, _values(shapes, labels, rng, SCALES[tries % len(SCALES)]), kw, rng)
        if smp is not None:
            out.append(smp)
    return out


def _component(ns, cls_name, vals, pre, up, kw=None):
    def go():
        if "clear_compgraph" in ns:
            ns["clear_compgraph"]()
        leaves = [_Leaf(_copy(v)) for v in vals]
        node = ns[cls_name](*leaves, **dict(kw or {}))
        node.forward()
        value = _copy(node.value)
        if pre is None:
            return [value]
        for leaf, g in zip(leaves, pre):
            leaf.grad = _copy(g)
        node.grad = _copy(up)
        node.backward()
        return [value, [_copy(leaf.grad) for leaf in leaves], [_copy(leaf.value) for leaf in leaves]]
    with np.errstate(all="ignore"):
        return _run(go)


# -- the loop ------------------------------------------------------------------------------

def _loop_samples(ref_ns, classes):
    classes = [c for c in classes if c in ref_ns]
    unary = [c for c in classes if c not in ("Add", "Mul")]
    binary = [c for c in classes if c in ("Add", "Mul")]
    out = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        leaves = [("Input", float(rng.normal())), ("Input", float(rng.normal())),
                  ("Parameter", float(rng.normal()))]
        nodes, n_nodes = [], 4 + seed % 5
        for i in range(n_nodes):
            avail = len(leaves) + len(nodes)
            last = avail - 1  # use the newest node so the graph stays connected
            if binary and (not unary or rng.random() < 0.5):
                other = int(rng.integers(0, avail))
                nodes.append((binary[int(rng.integers(len(binary)))], [last, other]))
            else:
                nodes.append((unary[int(rng.integers(len(unary)))], [last]))
        garbage = rng.normal(size=len(leaves) + len(nodes))
        out.append((leaves, nodes, garbage))
    return out


def _loop(ns, leaves, nodes, garbage):
    def go():
        ns["clear_compgraph"]()
        objs = [ns[kind](np.array(v)) for kind, v in leaves]
        for kind, args in nodes:
            objs.append(ns[kind](*[objs[a] for a in args]))
        for c in objs[len(leaves):]:
            c.forward()
        runs = []
        for _ in range(2):
            for o, g in zip(objs, garbage):
                o.grad = np.array(g)
            ns["Backward"](objs[-1])
            runs.append([_copy(o.grad) for o in objs])
        return runs
    with np.errstate(all="ignore"):
        return _run(go)


# -- Dual and Var --------------------------------------------------------------------------

DUAL_BATTERY = [
    lambda F, a, b, c, n: a + b, lambda F, a, b, c, n: a + c, lambda F, a, b, c, n: c + a,
    lambda F, a, b, c, n: a - b, lambda F, a, b, c, n: a - c, lambda F, a, b, c, n: c - a,
    lambda F, a, b, c, n: a * b, lambda F, a, b, c, n: a * c, lambda F, a, b, c, n: c * a,
    lambda F, a, b, c, n: a / b, lambda F, a, b, c, n: a / c, lambda F, a, b, c, n: c / a,
    lambda F, a, b, c, n: a ** n, lambda F, a, b, c, n: a ** 2, lambda F, a, b, c, n: -a,
] + [(lambda f: lambda F, a, b, c, n: F[f](a))(f) for f in ("exp", "sin", "cos", "sigmoid", "tanh")] \
  + [lambda F, a, b, c, n: F["log"](a * a + 0.5)] \
  + [(lambda f: lambda F, a, b, c, n: F[f](abs(c)))(f) for f in ("exp", "log", "sin", "cos", "sigmoid", "tanh")]


def _dual_samples():
    out = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        v = rng.uniform(0.3, 2.0, 3) * rng.choice([-1, 1], 3)
        d = rng.normal(size=2)
        n = [2, 3, -1.5, 0.5][seed % 4]
        if n % 1:
            v[0] = abs(v[0])
        out.append((float(v[0]), float(d[0]), float(v[1]), float(d[1]), float(v[2]), n))
    return out


def _dual(ns, sample):
    va, da, vb, db, c, n = sample
    F = {f: ns[f] for f in ("exp", "log", "sin", "cos", "sigmoid", "tanh") if f in ns}
    Dual = ns["Dual"]
    results = []
    for op in DUAL_BATTERY:
        def go(op=op):
            a, b = Dual(va, da), Dual(vb, db)
            r = op(F, a, b, c, n)
            out = [getattr(r, "val", r), getattr(r, "dot", None)]
            return out + [a.val, a.dot, b.val, b.dot]
        with np.errstate(all="ignore"):
            results.append(_run(go))
    return results


def _tape_samples():
    out = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        for f in FUNCTIONS_N:
            k = f.split(":")[0].count(",") + 1
            xs = rng.uniform(0.3, 1.8, k) * rng.choice([-1, 1], k)
            out.append((f, [float(x) for x in xs]))
    return out


def _var_ops(ns, sample):
    """Every operation of ``Var`` (the same battery as ``Dual``'s), then ``backward()``: the
    result's value and the grads of both operands."""
    va, _, vb, _, c, n = sample
    F = {f: ns[f] for f in ("exp", "log", "sin", "cos", "sigmoid", "tanh") if f in ns}
    Var = ns["Var"]
    results = []
    for op in DUAL_BATTERY:
        def go(op=op):
            a, b = Var(va), Var(vb)
            r = op(F, a, b, c, n)
            if hasattr(r, "backward"):
                r.backward()
            return [getattr(r, "value", r), a.value, a.grad, b.value, b.grad]
        with np.errstate(all="ignore"):
            results.append(_run(go))
    return results


def _tape(ns, f, xs):
    def go():
        fn = eval(f, ns)  # noqa: S307 - our own lambdas over the namespace's functions
        vs = [ns["Var"](x) for x in xs]
        out = fn(*vs)
        runs = [getattr(out, "value", out)]
        for _ in range(2):
            if hasattr(out, "backward"):
                out.backward()
            runs.append([v.grad for v in vs] + [getattr(out, "grad", None)])
        return runs
    with np.errstate(all="ignore"):
        return _run(go)


# -- functions -----------------------------------------------------------------------------

def _function_samples(name):
    out = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        if name == "logistic_ls_grads":
            out.append({"w": float(rng.normal(0, 1.5)), "b": float(rng.normal(0, 1.5)),
                        "x": float(rng.normal(0, 1.5)), "t": float(rng.uniform()), "lam": float(rng.uniform())})
        elif name == "unbroadcast":  # every rank 0..3 of the target, with and without new axes
            shape = tuple(int(s) for s in rng.integers(1, 5, size=seed % 4))
            extra = tuple(int(s) for s in rng.integers(2, 4, size=(seed // 4) % 2 + (seed % 2)))
            full = extra + tuple(s if s != 1 else int(rng.integers(2, 4)) for s in shape)
            out.append({"grad": rng.normal(size=full), "shape": shape})
        elif name == "derivative":
            for f in FUNCTIONS_1:
                out.append({"f": f, "x": float(rng.uniform(0.3, 1.8) * rng.choice([-1, 1]))})
        elif name in ("gradient_fwd", "gradient_rev"):
            for f in FUNCTIONS_N:
                k = f.split(":")[0].count(",") + 1
                out.append({"f": f, "xs": [float(x) for x in rng.uniform(0.3, 1.8, k) * rng.choice([-1, 1], k)]})
    return out


def _function(ns, name, kwargs):
    def go():
        kw = dict(kwargs)
        if isinstance(kw.get("f"), str):
            kw["f"] = eval(kw["f"], ns)  # noqa: S307 - our own lambdas
        kw = {k: _copy(v) for k, v in kw.items()}
        return ns[name](**kw)
    with np.errstate(all="ignore"):
        return _run(go)


def _mlp(ns):
    """The trained network: its predictions on the test rows, its logits, its trained weights
    (``params``, or ``layers`` of (W, b)), the training history."""
    def go():
        X = ns["X_test"]
        preds = np.asarray(ns["predict"](X))
        model = ns.get("final_model")
        logits = _copy(getattr(getattr(model, "logits", None), "value", None))
        params = getattr(model, "params", None) or [p for layer in getattr(model, "layers", None) or []
                                                    for p in layer]
        weights = [_copy(getattr(p, "value", p)) for p in params]
        hist = [[r.get("loss"), r.get("epoch")] for r in ns.get("final_history") or []]
        return [preds, logits, weights, hist]
    with np.errstate(all="ignore"):
        return _run(go)


def _mlp_small(ns, seed, validation=True):
    """The training routines on a small random problem: initial weights, predictions, one
    ``train_step`` and two epochs of ``train`` with validation data (what the final model
    alone does not show: the history, ``val_acc``, ``accuracy``), or without it (as the final
    model trains: a namespace built without the training cell has no final model)."""
    def go():
        rng = np.random.default_rng(seed)
        X, y = rng.normal(size=(24, 6)), rng.integers(0, 3, 24)
        Xv, yv = rng.normal(size=(10, 6)), rng.integers(0, 3, 10)
        # the declared domain includes a network with no hidden layer and fewer rows than a batch
        sizes = [(6, 5, 4, 3), (6, 5, 3), (6, 3), (6, 5, 3)][seed % 4]
        model = ns["build_mlp"](sizes, ("relu", "tanh")[seed % 2], seed=seed)
        weights = lambda: [[_copy(W.value), _copy(b.value)] for W, b in model.layers]  # noqa: E731
        init = weights()
        preds = np.asarray(model.predict(X))
        logits = _copy(model.logits.value)
        acc = model.accuracy(Xv, yv)
        loss = ns["train_step"](model, X[:8], y[:8], 0.1)
        stepped = weights()
        val = {"X_val": Xv, "y_val": yv} if validation else {}
        history = ns["train"](model, X, y, 0.1, 2, batch_size=30 if seed % 4 == 3 else 5, seed=seed, **val)
        history = [dict(r) for r in history] if isinstance(history, list) else history
        return [init, preds, logits, acc, loss, stepped, history, weights()]
    with np.errstate(all="ignore"):
        return _run(go)


# -- entry point ---------------------------------------------------------------------------

def _evaluators(ctx, unit):
    """[(what, evaluate(ns) -> output)] on the unit's domain; samples drawn with the reference."""
    ref = ctx.reference()
    test = next(t for t in ctx.tests if t["id"] == unit.test)
    out = []
    if unit.check == "component":
        cls = test["target"]
        suite = [c for part in ("visible", "hidden") for c in _normalise_cases(cls, (test.get(part) or {}).get("shapes"))]
        bases = DEFAULT_SHAPES.get(cls) or suite
        # and the suite's own cases, once each: a regime the hidden cases hold (a 1x1 kernel, one
        # channel) is part of the domain, so a mutant right there is not "wrong everywhere"
        norm = [[tuple(s) for s in b] for b in bases]
        extra = [c for c in suite if [tuple(s) for s in c] not in norm]
        for vals, pre, up, kw in _component_samples(ref, cls, max_rank(ctx.tests), OPERANDS.get(cls), bases, extra):
            args = "".join(f", {k}={v!r}" for k, v in kw.items())
            out.append((f"{cls} on shapes {[np.shape(v) for v in vals]}{args}",
                        (lambda vals, pre, up, kw: lambda ns: _component(ns, cls, vals, pre, up, kw))(
                            vals, pre, up, kw)))
    elif unit.check == "backward_loop":
        classes = test.get("classes") or LOOP_CLASSES
        for leaves, nodes, garbage in _loop_samples(ref, classes):
            text = ", ".join(f"{k}{a}" for k, a in nodes)
            out.append((f"Backward on graph {text}",
                        (lambda l, n, g: lambda ns: _loop(ns, l, n, g))(leaves, nodes, garbage)))
    elif unit.check == "dual":
        for smp in _dual_samples():
            out.append((f"Dual ops at {smp}", (lambda smp: lambda ns: _dual(ns, smp))(smp)))
    elif unit.check == "tape":
        for smp in _dual_samples():
            out.append((f"Var ops at {smp}", (lambda smp: lambda ns: _var_ops(ns, smp))(smp)))
        for f, xs in _tape_samples():
            out.append((f"Var: {f} at {xs}", (lambda f, xs: lambda ns: _tape(ns, f, xs))(f, xs)))
    elif unit.check == "function":
        name = test["target"]
        for kw in _function_samples(name):
            out.append((f"{name}({kw})", (lambda kw: lambda ns: _function(ns, name, kw))(kw)))
    elif unit.check.startswith("mlp_"):  # every unit of mlp_training: the same samples
        out.append(("the trained network on the test digits", _mlp))
        for seed in range(4):
            out.append((f"build_mlp/train_step/train on a small random problem (seed {seed})",
                        (lambda seed: lambda ns: _mlp_small(ns, seed))(seed)))
        out.append(("build_mlp/train_step/train on a small random problem, no validation data (seed 4)",
                    lambda ns: _mlp_small(ns, 4, validation=False)))
    return out


_REFERENCE_OUTPUTS: dict = {}


def _reference_outputs(ctx, unit, cells=None):
    """The samples and the reference's outputs on them. ``cells``: the mutant's namespace is
    built from these only (without the training cell): for mlp units the reference is built
    the same way, and a sample it cannot evaluate there (the final network) is left out."""
    mlp = unit.check.startswith("mlp_")
    short = tuple(c.id for c in cells) if mlp and cells is not None and len(cells) < len(ctx.cells) else None
    key = (ctx.name, ctx.root, ctx.n_sets, "mlp" if mlp else unit.test, short)  # mlp units share samples
    if key not in _REFERENCE_OUTPUTS:
        # the samples rebuild the graph, so they get a namespace of their own
        ref = ctx.reference() if not mlp else build(cells)[0] if short else ctx.fresh_reference()
        # a sample the reference itself raises on is outside the domain: no evidence either way
        _REFERENCE_OUTPUTS[key] = [(text, ev, out) for text, ev in _evaluators(ctx, unit)
                                   if not _raises(out := ev(ref))]
    return _REFERENCE_OUTPUTS[key]


def _raises(out) -> bool:
    return isinstance(out, tuple) and len(out) == 2 and out[0] == "raises"


def compare(ctx, ns, unit, cells=None) -> dict:
    """Samples, how many differ, the largest relative difference, and the first one that
    differs (``cells``: those ``ns`` was built from, if not all the notebook's)."""
    n = differ = 0
    worst, first = 0.0, None
    for text, ev, a in _reference_outputs(ctx, unit, cells):
        b = ev(ns)
        n += 1
        ok, err = same(b, a)
        worst = max(worst, err)
        if not ok:
            differ += 1
            first = first or text
    return {"samples": n, "differ": differ, "max_rel_diff": worst if math.isfinite(worst) else "inf",
            "first_difference": first}
