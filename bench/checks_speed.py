"""Speed of the grading checks, and forward evaluations: random projection vs full Jacobian.

Run: .venv/bin/python bench/checks_speed.py

1. Wall time to run every component test of tensor_edf (visible + hidden cases of
   assignments/tensor_edf/suite.toml) on the reference: public (numeric) and hidden
   (reference comparison). Target: < 1 s each.
2. Forward evaluations of the stated formulas used by the public numeric check, fast
   mode (one random projection v^T J u per case, the per-element Jacobian only after a
   failure) against the full per-element Jacobian for every case, on the reference, the
   correct corpus variants and the buggy corpus variants. Detection (pass/fail and
   diagnosis) must be equal; target: >= 10x fewer evaluations.
3. The same for the loop-invariant check on the tensor_edf hidden graphs.
"""
from __future__ import annotations

import sys
import time
from grader.authoring.template import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import reference  # noqa: E402
from grader.checks import hidden, public as P  # noqa: E402

try:
    from corpus import iter_variants, load_variant  # noqa: E402
except ImportError:  # the corpus is written separately
    iter_variants = None


def component_tests():
    suite = tomllib.loads((ROOT / "assignments" / "tensor_edf" / "suite.toml").read_text())
    return [dict(t, assignment=suite["assignment"]) for t in suite["test"] if t["check"] == "component"]


def specs_of(test):
    return hidden.build_specs(test, "visible") + hidden.build_specs(test, "hidden")


def full_case(ns, spec, counter):
    """The baseline: the full per-element Jacobian for every case."""
    record = P.probe(ns, spec)
    with P._quiet():
        return P.judge_component(spec, record, P.numeric_component_expectation(spec, True, counter))


def timed(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    tests = component_tests()
    n_specs = sum(len(specs_of(t)) for t in tests)
    pub = timed(lambda: [P.run_public(reference, t, w) for t in tests for w in ("visible", "hidden")])
    hid = timed(lambda: [hidden.run_hidden(reference, t, w) for t in tests for w in ("visible", "hidden")])
    print(f"tensor_edf component set: {len(tests)} tests, {n_specs} cases (visible + hidden)")
    print(f"{'path':<28}{'seconds':>10}{'target':>10}")
    print(f"{'public (numeric)':<28}{pub:>10.3f}{'< 1':>10}")
    print(f"{'hidden (vs reference)':<28}{hid:>10.3f}{'< 1':>10}")

    namespaces = [("reference", "correct", reference)]
    if iter_variants is not None:
        namespaces += [(v.name, "correct", load_variant(v.path)[0]) for v in iter_variants("correct")]
        targets = {t["target"] for t in tests}
        namespaces += [(v.name, "buggy", load_variant(v.path)[0]) for v in iter_variants("buggy")
                       if v.expect["component"] in targets]
    rows = {"correct": [0, 0, 0, 0], "buggy": [0, 0, 0, 0]}  # fast evals, full evals, cases, disagreements
    caught = {"fast": 0, "full": 0}
    for name, kind, ns in namespaces:
        fast_n, full_n = P.Counter(), P.Counter()
        fails_fast, fails_full = [], []
        for t in tests:
            for spec in specs_of(t):
                a = P.numeric_component_case(ns, spec, fast_n)
                b = full_case(ns, spec, full_n)
                if (a.passed, a.diagnosis) != (b.passed, b.diagnosis):
                    rows[kind][3] += 1
                rows[kind][2] += 1
                fails_fast.append(a)
                fails_full.append(b)
        rows[kind][0] += fast_n.n
        rows[kind][1] += full_n.n
        if kind == "buggy":
            caught["fast"] += any(not c.passed for c in fails_fast)
            caught["full"] += any(not c.passed for c in fails_full)
    print()
    print("forward evaluations, component checks (tensor_edf cases)")
    print(f"{'code':<10}{'cases':>8}{'fast':>10}{'full':>10}{'ratio':>8}{'verdicts differ':>17}")
    for kind, (fast, full, cases, differ) in rows.items():
        if cases:
            print(f"{kind:<10}{cases:>8}{fast:>10}{full:>10}{full / max(fast, 1):>8.1f}{differ:>17}")
    n_buggy = sum(1 for _, k, _ in namespaces if k == "buggy")
    if n_buggy:
        print(f"buggy component variants caught: fast {caught['fast']}/{n_buggy}, full {caught['full']}/{n_buggy}")

    graphs = hidden.build_specs(next(dict(t, assignment="tensor_edf") for t in tomllib.loads(
        (ROOT / "assignments" / "tensor_edf" / "suite.toml").read_text())["test"] if t["check"] == "backward_loop"))
    fast_n, full_n = P.Counter(), P.Counter()
    for spec in graphs:
        order = P.record_order(P.probe(reference, spec))
        P.numeric_backward_expectation(spec, order, fast_n)
        everything = {(k, n) for k in range(len(order)) for n in P._judged(spec)}
        P.numeric_backward_expectation(spec, order, full_n, everything)
    print()
    print(f"forward evaluations, loop invariant ({len(graphs)} tensor_edf hidden graphs, reference)")
    print(f"{'fast':>10}{'full':>10}{'ratio':>8}")
    print(f"{fast_n.n:>10}{full_n.n:>10}{full_n.n / max(fast_n.n, 1):>8.1f}")


if __name__ == "__main__":
    main()
