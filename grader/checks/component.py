"""Check kind ``component``: one component class's forward and backward on random operands.

Specs sample operands from the class's domain away from kinks; the probe runs forward,
then backward three times (zero grads, non-zero grads already present, upstream ones);
the judge checks value, mutation, grad shapes, grad values (a random projection, or the
full Jacobian to localise) and accumulation. Expectations: central differences of the
stated formula (``contract.py``) or, hidden, the reference's own record.
"""
import numpy as np

from .base import CaseResult, Kind, Result, _arr, _err, _need, _quiet, _seeds, combine, probe, register
from .compare import ATOL, H, RTOL, RTOL_EXACT, exact_atol
from .component_judge import judge_component
from .contract import FORMULAS


DEFAULT_SHAPES = {
    "Add": [[(4, 3), (4, 3)], [(4, 3), (3,)]], "Mul": [[(4, 3), (4, 3)], [(4, 3), (3,)]],
    "VDot": [[(4, 3), (3, 5)], [(3,), (3, 5)], [(4, 4), (4, 4)]],
    "SoftmaxCrossEntropy": [[(4, 3), (4,)]], "MSE": [[(4, 3), (4, 3)]],
}


STABILITY = ("Sigmoid", "Tanh", "SoftmaxCrossEntropy", "Log")


def _sample(name: str, shape, rng: np.random.Generator, domain: str | None = None, scale: float = 1.0) -> np.ndarray:
    """Operand values away from the class's kinks and singularities."""
    shape = tuple(shape)
    domain = domain or {"ReLU": "nonzero", "Log": "positive"}.get(name, "real")
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=shape) * scale
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape) * scale
    if name == "Exp":
        return rng.uniform(-2.0, 2.0, size=shape) * min(scale, 1.0)
    if name in ("Sigmoid", "Tanh"):
        return rng.uniform(-3.0, 3.0, size=shape) * scale
    return rng.normal(0.0, 1.0, size=shape) * scale


def _upstream(shape, rng: np.random.Generator) -> np.ndarray:
    if tuple(shape) == ():
        return np.asarray(rng.choice([-1.0, 1.0]) * rng.uniform(1.3, 2.7))
    return rng.normal(0.0, 1.0, size=shape)


def _is_shape(s):
    return isinstance(s, (list, tuple)) and all(isinstance(i, (int, np.integer)) for i in s)


def _normalise_cases(name: str, shapes) -> list[list[tuple]]:
    """``shapes`` is one case (a list of operand shapes) or a list of cases."""
    if shapes is None:
        return [[tuple(s) for s in case] for case in DEFAULT_SHAPES.get(name, [[(4, 3)]])]
    shapes = list(shapes)
    cases = [shapes] if shapes and _is_shape(shapes[0]) else shapes
    out = []
    for case in cases:
        case = [tuple(int(i) for i in s) for s in case]
        if name == "SoftmaxCrossEntropy" and len(case) == 1:
            case.append((case[0][0],))
        out.append(case)
    return out


def _stability_operands(name: str, case: list[tuple]) -> list[np.ndarray]:
    big = np.array([-1000.0, 1000.0, -50.0, 50.0, 0.3, -0.3, 0.0])
    if name == "SoftmaxCrossEntropy":
        return [np.array([[-1000.0, 1000.0, 0.0], [1000.0, -1000.0, 999.0], [3.0, -1000.0, 1000.0]]),
                np.array([0, 1, 1], dtype=np.int64)]
    shape = case[0]
    n = int(np.prod(shape))
    if name == "Log":
        vals = np.resize(np.array([1e300, 1e-300, 7.0, 1e5]), n)
    else:
        vals = np.resize(big, n) if n > 1 else np.array([1000.0])
    return [vals.reshape(shape)]


def component_specs(name, shapes=None, seed=0, scales=None, domain=None, labels=None) -> list:
    """Specs for one component class: one per case (``shapes``), seeded.

    ``scales`` (one per case) multiplies the operand values (1000 probes stability),
    ``domain`` ("real", "positive", "nonzero") overrides the class's input domain,
    ``labels`` lists the operands that are integer class labels. Sigmoid, Tanh, Log and
    SoftmaxCrossEntropy get a forward-only large-input case unless a scale >= 100 is given.
    """
    rng = np.random.default_rng(seed)
    cases = _normalise_cases(name, shapes)
    scales = list(scales) if scales is not None else [1.0] * len(cases)
    labels = list(labels) if labels is not None else ([1] if name == "SoftmaxCrossEntropy" else [])
    specs = []
    for i, case in enumerate(cases):
        scale = float(scales[i]) if i < len(scales) else 1.0
        ops = [_sample(name, s, rng, domain, scale) for s in case]
        if name == "SoftmaxCrossEntropy" and 0 not in labels and scale == 1.0:
            ops[0] = rng.normal(0.0, 2.0, size=case[0])
        for k in labels:
            ops[k] = rng.integers(0, case[0][-1], size=case[k]).astype(np.int64)
        with _quiet():
            out_shape = np.shape(FORMULAS[name](*ops)) if name in FORMULAS else np.shape(ops[0])
        specs.append({"check": "component", "target": name, "case": i, "operands": ops, "labels": labels,
                      "upstream": _upstream(out_shape, rng),
                      "prior": [rng.normal(0.0, 1.0, size=np.shape(o)) for o in ops],
                      "u": [rng.normal(size=np.shape(o)) for o in ops]})
    if name in STABILITY and max(scales, default=1.0) < 100 and cases:
        specs.append({"check": "component", "target": name, "case": len(specs), "labels": labels,
                      "operands": _stability_operands(name, cases[0]), "forward_only": True})
    return specs


class _Leaf:
    """An operand node for probing one component: ``value`` and ``grad``, nothing else."""

    def __init__(self, value):
        self.value = value
        self.grad = None


def _probe_component(ns, spec: dict) -> dict:
    rec = {}
    stage = "lookup"
    try:
        cls = _need(ns, spec["target"])
        ops = [np.array(a) for a in spec["operands"]]
        leaves = [_Leaf(a.copy()) for a in ops]
        stage = "construct"
        c = cls(*leaves)
        stage = "forward"
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


def _component_noise(v, f, ops):
    xs = max((float(np.max(np.abs(o), initial=0)) for o in ops), default=0.0)
    return float(np.sum(np.abs(v))) * (float(np.max(np.abs(f), initial=0)) + xs)


def numeric_component_expectation(spec, full=False, counter=None) -> dict:
    """Expected record from central differences of the stated forward formula."""
    name = spec["target"]
    labels = list(spec.get("labels") or [])
    f = FORMULAS[name]
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

    def at(shifted):
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


def check_component(ns, name, shapes=None, seed=0, scales=None, domain=None, labels=None,
                    test_id=None) -> Result:
    """Numeric check of one component class: ``check_component(ns, "Sigmoid", shapes=[(4, 3)], seed=0)``."""
    specs = component_specs(name, shapes, seed, scales, domain, labels)
    cases = [numeric_component_case(ns, s) for s in specs]
    return combine(test_id or name, cases)


def numeric_component_case(ns, spec, counter=None) -> CaseResult:
    record = probe(ns, spec)
    with _quiet():
        verdict = judge_component(spec, record, numeric_component_expectation(spec, counter=counter))
        if verdict.localise:
            verdict = judge_component(spec, record, numeric_component_expectation(spec, True, counter))
    return verdict


def component_suite_specs(test: dict, params: dict, ns=None, classes=None) -> list:
    """The specs of a suite test: one set of cases per seed."""
    return [s for seed in _seeds(params)
            for s in component_specs(test.get("target"), params.get("shapes"), seed, params.get("scales"),
                                     params.get("domain"), params.get("labels"))]


def component_exact(spec: dict, rec: dict) -> dict:
    """The hidden expectation from the reference's record on the same spec."""
    exp = {"value": rec["value"], "rtol": RTOL_EXACT}
    if spec.get("forward_only"):
        exp["atol"] = 0.0
        return exp
    exp.update(grads=rec["grads"], grads_ones=rec["grads_ones"], atol=exact_atol(rec["grads"]))
    return exp


register(Kind("component", probe=_probe_component, judge=judge_component, specs=component_suite_specs,
              numeric_case=numeric_component_case, exact=component_exact, graph_lists=True))
