"""Check kind ``component``: one component class's forward and backward on random operands.

Specs sample operands from the class's domain away from kinks; the probe runs forward,
then backward three times (zero grads, non-zero grads already present, upstream ones);
the judge checks value, mutation, grad shapes, grad values (a random projection, or the
full Jacobian to localise) and accumulation. Expectations: central differences of the
stated formula (``contract.py``) or, hidden, the reference's own record.
"""
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import CaseResult, Kind, Result, _arr, _err, _need, _quiet, _seeds, combine, probe, register
from .compare import ATOL, H, RTOL, RTOL_EXACT, Counter, exact_atol
from .component_judge import judge_component
from .contract import DEFAULT_REGIONS, DOMAINS, FORMULAS, LABELS, LARGE_INPUTS, OPERANDS, SHAPES
from .conv_contract import sample_distinct
from .types import ComponentRecord, ComponentSpec, Namespace, Shape


# the declared default cases and large-input classes, under the names the checks use
DEFAULT_SHAPES = SHAPES
STABILITY = tuple(LARGE_INPUTS)


def _signed(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """Random values of either sign with magnitudes in [0.5, 2]: upstream and prior grads
    that are never ones, never near zero."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)


def _from_regions(regions: list, which: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lo = np.array([regions[i][0] for i in which.ravel()]).reshape(which.shape)
    hi = np.array([regions[i][1] for i in which.ravel()]).reshape(which.shape)
    return lo + (hi - lo) * rng.uniform(size=which.shape)


def _sample(name: str, shape: Shape, rng: np.random.Generator, domain: str | None = None, scale: float = 1.0,
            offset: int | None = None) -> np.ndarray:
    """Operand values from the class's declared regions (``contract.DOMAINS``).

    A class with several regions gets every region in the array, balanced, in random
    positions; ``offset`` (a 0-d or tiny operand judged once per region) puts element j
    in region ``offset + j``. ``domain`` overrides: "positive", "nonzero", "real", or
    "distinct" (entries pairwise apart, no tie in a pooling window: MaxPool2D's declared domain).
    """
    shape = tuple(shape)
    domain = domain or (DOMAINS.get(name) or {}).get("domain")
    if domain == "distinct":  # a max's kink is a tie, not a value: entries pairwise apart
        return sample_distinct(shape, rng, scale)
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=shape) * scale
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape) * scale
    if domain == "real":
        return rng.normal(0.0, 1.0, size=shape) * scale
    regions = list((DOMAINS.get(name) or {}).get("regions", DEFAULT_REGIONS).values())
    n = int(np.prod(shape))
    if name in DOMAINS and len(regions) > 1:
        first = offset if offset is not None else int(rng.integers(len(regions)))
        which = (first + np.arange(n)) % len(regions)
        if offset is None:
            which = rng.permutation(which)
    else:
        which = rng.integers(len(regions), size=n)
    return _from_regions(regions, which.reshape(shape), rng) * scale


def _upstream(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    if tuple(shape) == ():
        return np.asarray(rng.choice([-1.0, 1.0]) * rng.uniform(1.3, 2.7))
    return _signed(shape, rng)


def regions_of(name: str) -> list[str]:
    """The names of the class's branch regions (one, "all", for a class without branches)."""
    regions = (DOMAINS.get(name) or {}).get("regions") or {}
    return list(regions) if len(regions) > 1 else []


def _is_shape(s: Any) -> bool:
    return isinstance(s, (list, tuple)) and all(isinstance(i, (int, np.integer)) for i in s)


def _normalise_cases(name: str, shapes: Sequence[Any] | None) -> list[list[tuple]]:
    """``shapes`` is one case (a list of operand shapes) or a list of cases."""
    if shapes is None:
        return [[tuple(s) for s in case] for case in DEFAULT_SHAPES.get(name, [[(4, 3)]])]
    shapes = list(shapes)
    cases = [shapes] if shapes and _is_shape(shapes[0]) else shapes
    out = []
    for case in cases:
        case = [tuple(int(i) for i in s) for s in case]
        if name in LABELS and len(case) == len(OPERANDS[name]) - 1:  # labels (N,) for an (N, C) operand
            case.append((case[0][0],))
        out.append(case)
    return out


def _stability_parts(name: str, case: list[tuple]) -> list[list[np.ndarray]]:
    """Operands of the large-input instances (the class's declared ``large_inputs``): one
    array per operand as declared, or the declared values spread over the first operand
    (an operand of one element: one instance for each of the first two values)."""
    large = LARGE_INPUTS[name]
    if isinstance(large, dict):
        labels = LABELS.get(name, ())
        return [[np.array(large[op], dtype=np.int64 if op in labels else float) for op in OPERANDS[name]]]
    values = np.array(large, dtype=float)
    shape = case[0]
    n = int(np.prod(shape))
    if n > 1:
        return [[np.resize(values, n).reshape(shape)]]
    return [[np.full(shape, v)] for v in values[:2]]


def _kwargs_of(kwargs: dict | list[dict] | None, i: int) -> dict:
    """Case ``i``'s constructor keyword arguments: one table for all cases, or one per case."""
    if isinstance(kwargs, list):
        return dict(kwargs[i]) if i < len(kwargs) else {}
    return dict(kwargs or {})


def _part(name: str, case: list[tuple], rng: np.random.Generator, i: int, labels: list, scale: float,
          domain: str | None, kw: dict | None = None, offset: int | None = None,
          regime: str | None = None) -> ComponentSpec:
    """One instance of a case: operands, upstream, prior grads, projection directions
    (``kw``: the constructor's keyword arguments, which also set the output shape)."""
    kw = dict(kw or {})
    ops = [_sample(name, s, rng, domain, scale, offset) for s in case]
    if name in LABELS and 0 not in labels and scale == 1.0:  # the scores of a classification loss
        ops[0] = rng.normal(0.0, 2.0, size=case[0])
    for k in labels:
        ops[k] = rng.integers(0, case[0][-1], size=case[k]).astype(np.int64)
    with _quiet():
        out_shape = np.shape(FORMULAS[name](*ops, **kw)) if name in FORMULAS else np.shape(ops[0])
    spec = {"check": "component", "target": name, "case": i, "operands": ops, "labels": labels,
            "upstream": _upstream(out_shape, rng), "prior": [_signed(np.shape(o), rng) for o in ops],
            "u": [rng.normal(size=np.shape(o)) for o in ops]}
    if kw:
        spec["kwargs"] = kw
    if regime:
        spec["regime"] = regime
    return spec


def _case_parts(name: str, case: list[tuple], rng: np.random.Generator, i: int, labels: list, scale: float,
                domain: str | None, kw: dict | None = None) -> list[ComponentSpec]:
    """The instances one case is judged on: one, or one per region when an operand is too
    small to hold every region of the class (a 0-d ReLU input is either side of the kink)."""
    regions = regions_of(name) if domain is None else []
    small = [k for k, s in enumerate(case) if k not in labels and int(np.prod(s)) < len(regions)]
    if not small:
        return [_part(name, case, rng, i, labels, scale, domain, kw)]
    return [_part(name, case, rng, i, labels, scale, domain, kw, offset=r, regime=regions[r])
            for r in range(len(regions))]


def component_specs(name: str, shapes: Sequence[Any] | None = None, seed: int = 0,
                    scales: Sequence[float] | None = None, domain: str | None = None,
                    labels: Sequence[int] | None = None,
                    kwargs: dict | list[dict] | None = None) -> list[ComponentSpec]:
    """Specs for one component class: one per case (``shapes``), seeded.

    ``scales`` (one per case) multiplies the operand values (1000 probes stability),
    ``domain`` ("real", "positive", "nonzero", "distinct") overrides the class's declared regions,
    ``labels`` lists the operands that are integer class labels. A case whose operand is too
    small to hold every region is a group of instances (``parts``), one per region.
    Sigmoid, Tanh, Log and SoftmaxCrossEntropy get a large-input case unless a scale >= 100
    is given: its forward runs on inputs in the thousands with floating-point errors raised
    (an overflow is a failure), grouped with an ordinary instance so that it judges the
    backward too and gives a backward bug nothing.
    ``kwargs``: the constructor's keyword arguments (``Conv2D``'s stride, padding), one table
    for every case or a list of one table per case; stored in each instance as ``kwargs``.
    """
    rng = np.random.default_rng(seed)
    cases = _normalise_cases(name, shapes)
    scales = list(scales) if scales is not None else [1.0] * len(cases)
    labels = list(labels) if labels is not None else [OPERANDS[name].index(op) for op in LABELS.get(name, ())]
    specs = []
    for i, case in enumerate(cases):
        scale = float(scales[i]) if i < len(scales) else 1.0
        parts = _case_parts(name, case, rng, i, labels, scale, domain, _kwargs_of(kwargs, i))
        specs.append(parts[0] if len(parts) == 1 else {"check": "component", "target": name, "case": i,
                                                        "parts": parts})
    if name in STABILITY and max(scales, default=1.0) < 100 and cases:
        i = len(specs)
        stable = [{"check": "component", "target": name, "case": i, "labels": labels, "regime": "large inputs",
                   "operands": ops, "forward_only": True, "strict": True} for ops in _stability_parts(name, cases[0])]
        parts = stable + _case_parts(name, cases[0], rng, i, labels, 1.0, domain, _kwargs_of(kwargs, 0))
        specs.append({"check": "component", "target": name, "case": i, "parts": parts})
    return specs


class _Leaf:
    """An operand node for probing one component: ``value`` and ``grad``, nothing else."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value
        self.grad = None


def _unbroadcast_by_definition(grad: np.ndarray, shape: Shape) -> np.ndarray:
    """The adjoint of broadcasting an operand of ``shape`` up to ``grad``'s shape, from its
    definition (the grader's stand-in, not the notebook's method): every entry of ``grad`` is
    added to the operand entry it was broadcast from (``idx``: that entry's flat index)."""
    g, shape = np.asarray(grad, dtype=float), tuple(shape)
    size = int(np.prod(shape, dtype=np.int64))
    idx = np.broadcast_to(np.arange(size).reshape(shape), g.shape)
    return np.bincount(idx.ravel(), weights=g.ravel(), minlength=size).reshape(shape)


def _probe_component(ns: Namespace, spec: ComponentSpec) -> ComponentRecord:
    """The component's record; while it runs, the notebook's ``unbroadcast`` (a graded unit of
    its own in tensor_edf) is the grader's, so a bug there is not charged to Add, Mul or MSE."""
    if "parts" in spec:
        return {"parts": [_probe_component(ns, part) for part in spec["parts"]]}
    swap = isinstance(ns, dict) and callable(ns.get("unbroadcast"))
    saved = ns.get("unbroadcast") if swap else None
    if swap:
        ns["unbroadcast"] = _unbroadcast_by_definition
    try:
        return _probe_one_component(ns, spec)
    finally:
        if swap:
            ns["unbroadcast"] = saved


def _probe_one_component(ns: Namespace, spec: ComponentSpec) -> ComponentRecord:
    rec = {}
    stage = "lookup"
    try:
        cls = _need(ns, spec["target"])
        ops = [np.array(a) for a in spec["operands"]]
        leaves = [_Leaf(a.copy()) for a in ops]
        stage = "construct"
        c = cls(*leaves, **dict(spec.get("kwargs") or {}))
        stage = "forward"
        if spec.get("strict"):  # the stability case: an overflow or a 0/0 is an error, not a warning
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                c.forward()
        else:
            c.forward()
        rec["value"] = _arr(getattr(c, "value", None))
        rec["operands_after_forward"] = [_arr(leaf.value) for leaf in leaves]
        if spec.get("forward_only"):
            return rec
        for leaf, a in zip(leaves, ops):  # an operand changed by forward is restored: judge backward on the spec's values
            leaf.value = a.copy()
        stage = "backward"
        upstream = np.array(spec["upstream"], dtype=float)
        runs = (("grads", upstream, None), ("grads_prior", upstream, spec["prior"]),
                ("grads_ones", np.ones_like(upstream), None))
        for key, up, prior in runs:
            for i, leaf in enumerate(leaves):
                leaf.value = ops[i].copy()
                leaf.grad = (np.zeros(ops[i].shape) if prior is None else np.array(prior[i], dtype=float))
            c.grad = up.copy()
            c.backward()
            rec[key] = [_arr(leaf.grad) for leaf in leaves]
            if key == "grads":
                rec["operands_after_backward"] = [_arr(leaf.value) for leaf in leaves]
    except (Exception, SystemExit) as e:
        rec["error"] = _err(e)
        rec["error_at"] = stage
    return rec


def _component_noise(v: np.ndarray, f: np.ndarray, ops: list[np.ndarray]) -> float:
    xs = max((float(np.max(np.abs(o), initial=0)) for o in ops), default=0.0)
    return float(np.sum(np.abs(v))) * (float(np.max(np.abs(f), initial=0)) + xs)


def numeric_component_expectation(spec: ComponentSpec, full: bool = False, counter: Counter | None = None) -> dict:
    """Expected record from central differences of the stated forward formula."""
    name = spec["target"]
    labels = list(spec.get("labels") or [])
    kw = dict(spec.get("kwargs") or {})
    f = (lambda *a: FORMULAS[name](*a, **kw)) if kw else FORMULAS[name]
    ops = [np.asarray(o) for o in spec["operands"]]
    with _quiet():
        value = np.asarray(f(*ops))
    exp = {"value": value, "rtol": RTOL}
    if spec.get("forward_only"):
        exp["atol"] = 0.0
        return exp
    v = np.asarray(spec["upstream"], dtype=float)
    exp["atol"] = ATOL * (1 + _component_noise(v, value, ops))
    diff = [k for k in range(len(ops)) if k not in labels]

    def at(shifted: list[np.ndarray]) -> np.ndarray:
        if counter is not None:
            counter.n += 1
        return np.asarray(f(*shifted), dtype=float)

    if not full:
        u = [np.asarray(spec["u"][k], dtype=float) if k in diff else None for k in range(len(ops))]
        plus = [o + H * u[k] if k in diff else o for k, o in enumerate(ops)]
        minus = [o - H * u[k] if k in diff else o for k, o in enumerate(ops)]
        d = (at(plus) - at(minus)) / (2 * H)
        exp["proj"] = {"u": u, "want": float(np.sum(v * d)), "scale": float(np.sum(np.abs(v * d)))}
        return exp
    grads, grads_ones = [], []
    for k, o in enumerate(ops):
        if k not in diff:
            grads.append(np.zeros(o.shape))
            grads_ones.append(np.zeros(o.shape))
            continue
        g, g1 = np.zeros(o.shape), np.zeros(o.shape)
        for j in np.ndindex(o.shape):
            shifted = [x.astype(float) if i == k else x for i, x in enumerate(ops)]
            base = shifted[k][j]
            shifted[k][j] = base + H
            fp = at(shifted)
            shifted[k][j] = base - H
            fm = at(shifted)
            dj = (fp - fm) / (2 * H)
            g[j], g1[j] = np.sum(v * dj), np.sum(dj)
        grads.append(g)
        grads_ones.append(g1)
    exp["grads"], exp["grads_ones"] = grads, grads_ones
    return exp


def check_component(ns: Namespace, name: str, shapes: Sequence[Any] | None = None, seed: int = 0,
                    scales: Sequence[float] | None = None, domain: str | None = None,
                    labels: Sequence[int] | None = None, test_id: str | None = None,
                    kwargs: dict | list[dict] | None = None) -> Result:
    """Numeric check of one component class: ``check_component(ns, "Sigmoid", shapes=[(4, 3)], seed=0)``."""
    specs = component_specs(name, shapes, seed, scales, domain, labels, kwargs)
    cases = [numeric_component_case(ns, s) for s in specs]
    return combine(test_id or name, cases)


def numeric_component_case(ns: Namespace, spec: ComponentSpec, counter: Counter | None = None) -> CaseResult:
    record = probe(ns, spec)
    with _quiet():
        if "parts" not in spec:
            verdict = judge_component(spec, record, numeric_component_expectation(spec, counter=counter))
            if verdict.localise:
                verdict = judge_component(spec, record, numeric_component_expectation(spec, True, counter))
            return verdict
        parts = spec["parts"]
        exp = {"parts": [numeric_component_expectation(p, counter=counter) for p in parts]}
        verdict = judge_component(spec, record, exp)
        if verdict.localise is not None and verdict.localise is not False and not isinstance(verdict.localise, bool):
            i = verdict.localise
            exp["parts"][i] = numeric_component_expectation(parts[i], True, counter)
            verdict = judge_component(spec, record, exp)
    return verdict


def component_suite_specs(test: dict, params: dict, ns: Namespace = None,
                          classes: Sequence[str] | None = None) -> list[ComponentSpec]:
    """The specs of a suite test: one set of cases per seed."""
    return [s for seed in _seeds(params)
            for s in component_specs(test.get("target"), params.get("shapes"), seed, params.get("scales"),
                                     params.get("domain"), params.get("labels"), params.get("kwargs"))]


def component_exact(spec: ComponentSpec, rec: ComponentRecord) -> dict:
    """The hidden expectation from the reference's record on the same spec."""
    if "parts" in spec:
        return {"parts": [component_exact(p, r) for p, r in zip(spec["parts"], rec["parts"])]}
    exp = {"value": rec["value"], "rtol": RTOL_EXACT}
    if spec.get("forward_only"):
        exp["atol"] = 0.0
        return exp
    exp.update(grads=rec["grads"], grads_ones=rec["grads_ones"], atol=exact_atol(rec["grads"]))
    return exp


register(Kind("component", probe=_probe_component, judge=judge_component, specs=component_suite_specs,
              numeric_case=numeric_component_case, exact=component_exact, graph_lists=True))
