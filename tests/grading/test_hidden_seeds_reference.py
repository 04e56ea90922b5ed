"""Per-submission hidden seeds hold for the reference: every assignment's notebook (its reference
solutions, run as cells in-process, as the audit builds it) earns every hidden point under many
keys, and learns every task of the accuracy test's pool with a margin. The one mixing
(``hidden.seeded``) is what the audit's seed sets use."""
from __future__ import annotations

import random

import pytest

from grader.audit.namespace import build, notebook_cells
from grader.audit.run import seed_set
from grader.authoring.assignment import discover, load_assignment
from grader.checks import hidden
from grader.checks.base import probe

_rng = random.Random(2026)
KEYS = [_rng.getrandbits(63) for _ in range(20)]  # 60 were run once before trusting


@pytest.fixture(scope="module")
def notebooks() -> dict:
    out = {}
    for name in discover():
        a = load_assignment(name)
        ns, errors = build(notebook_cells(a))
        assert not errors, errors
        out[name] = (a, ns)
    return out


def test_mixing_touches_only_hidden_seeds_and_is_the_audits():
    t = next(t.table for t in load_assignment("tensor_edf").tests if t.table["id"] == "add")
    assert hidden.seeded(t, None) == t
    mixed = hidden.seeded(t, KEYS[0])
    assert mixed["visible"] == t["visible"] and mixed["hidden"]["shapes"] == t["hidden"]["shapes"]
    assert mixed["hidden"]["seeds"] != t["hidden"]["seeds"]
    assert all(0 <= s < 2 ** 31 - 1 for s in mixed["hidden"]["seeds"])
    assert hidden.seeded(t, KEYS[0]) == mixed and hidden.seeded(t, KEYS[1]) != mixed
    for k in (1, 2):
        assert seed_set(t, k) == hidden.seeded(t, k)  # the audit's set k is the key k
    acc = next(t.table for t in load_assignment("mlp_training").tests if t.table["check"] == "mlp_accuracy")
    assert {hidden.seeded(acc, k)["hidden"]["seed"] for k in KEYS} <= set(range(hidden.MLP_TASK_SEEDS))


@pytest.mark.parametrize("name", sorted(discover()))
def test_the_reference_earns_every_hidden_point_under_many_keys(notebooks, name):
    a, ns = notebooks[name]
    failed = []
    for key in KEYS:
        for t in a.tests:
            if t.table["check"] == "mlp_accuracy" and t.table["hidden"].get("measure") != "predict":
                continue  # trains a network: the pool test below
            r = hidden.run_hidden(ns, t.table, key=key)
            if r.score < 1:
                failed.append((key, t.table["id"], r.message[:200]))
    assert not failed


@pytest.mark.parametrize("name", ["mlp_training", "conv_edf"])
def test_the_reference_learns_every_task_of_the_pool(notebooks, name):
    """Every task a key can pick (mlp: digits re-drawn; conv: images rotated or mirrored), learned
    by the reference's own training with a margin of 0.01 over the hidden target."""
    a, ns = notebooks[name]
    t = next(t.table for t in a.tests if t.table["check"] == "mlp_accuracy")
    target = float(t["hidden"]["target"])
    accuracies = {}
    for seed in range(hidden.MLP_TASK_SEEDS):
        table = dict(t, hidden=dict(t["hidden"], seed=seed))
        spec = hidden.build_specs(table)[0]
        r = hidden.judge_case(table, spec, probe(ns, spec))
        assert r.passed, (seed, r.message)
        accuracies[seed] = r.details["accuracy"]
    assert min(accuracies.values()) >= target + 0.01 - 1e-9, sorted(accuracies.items(), key=lambda kv: kv[1])[:3]
