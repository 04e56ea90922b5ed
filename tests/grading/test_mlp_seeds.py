"""The mlp_training checks on many seeds, in one process: the reference (pulled by name, run as
notebook cells) passes every case, publicly and hidden, and learns the re-drawn task above
the hidden target on every hidden seed. A threshold is trusted only after this."""
from __future__ import annotations

import inspect
import textwrap

import numpy as np
import pytest

import reference
from grader.checks import hidden
from grader.checks import mlp as M
from grader.checks import mlp_net
from grader.checks.public import probe
from reference import mlp as ref_mlp

FINAL_SETTINGS = {"sizes": (64, 64, 10), "activation": "relu", "eta": 0.5, "epochs": 20, "batch_size": 32}


def notebook(**cells) -> dict:
    """A fresh notebook-like namespace: the given code, the reference's solutions by name, then
    ``cells`` (source strings) run on top, as a student's cells would be."""
    ns = {name: getattr(reference, name) for name in reference.__all__}
    ns.update(np=np, ACTIVATIONS=ref_mlp.ACTIVATIONS, __name__=ref_mlp.__name__)  # @dataclass looks it up
    exec("from dataclasses import dataclass, field\n", ns)
    for name in ("MLP", "build_mlp", "train_step", "train"):
        exec(textwrap.dedent(inspect.getsource(getattr(ref_mlp, name))), ns)
    for source in cells.values():
        exec(source, ns)
    reference.clear_compgraph()
    return ns


@pytest.fixture(scope="module")
def trained():
    ns = notebook()
    ns["final_settings"] = dict(FINAL_SETTINGS)
    X, y, _, _ = ref_mlp.load_digits_split(0)
    model = ns["build_mlp"](FINAL_SETTINGS["sizes"], "relu", seed=0)
    ns["train"](model, X, y, 0.5, 2, 32, seed=0)
    ns["predict"] = model.predict
    return ns


@pytest.mark.parametrize("check", list(mlp_net.MLP_UNIT_KINDS))
def test_reference_passes_every_unit_check_over_50_seeds(trained, check):
    for seed in range(50):
        public = mlp_net.check_mlp(trained, check, seed=seed)
        assert public.passed, (seed, public.message)
        test = {"id": check, "check": check, "assignment": "mlp_training", "hidden": {"seed": seed}}
        exact = hidden.run_hidden(trained, test)
        assert exact.passed, (seed, exact.message)


def test_reference_learns_the_redrawn_task_on_20_hidden_seeds():
    ns = notebook()
    ns["final_settings"] = dict(FINAL_SETTINGS)
    target = 0.94
    accuracies = []
    for seed in range(20):
        spec = hidden.mlp_learning_specs({"seed": seed})[0]
        _, _, X_eval, y_eval = hidden._digits_task(seed)
        r = M.judge_mlp_learning(spec, probe(ns, spec), X_eval, y_eval, target)
        assert r.passed, (seed, r.message)
        accuracies.append(r.details["accuracy"])
    assert min(accuracies) >= target + 0.01  # a margin, not a coin toss


def test_the_redrawn_task_is_not_the_notebooks_data():
    X_nb = np.concatenate(ref_mlp.load_digits_split(0)[::2])
    X_tr, _, X_ev, _ = ref_mlp.load_digits_task(1)
    rows = {r.tobytes() for r in X_nb}
    assert not any(r.tobytes() in rows for r in X_ev)  # pixels permuted: no held-back row is in the notebook
    # the same digits, their pixels in another order
    assert {np.sort(r).tobytes() for r in X_ev} <= {np.sort(r).tobytes() for r in X_nb}


def test_weights_trained_on_the_notebooks_digits_do_not_fit_the_redrawn_task():
    ns = notebook()
    X, y, _, _ = ref_mlp.load_digits_split(0)
    model = ns["build_mlp"]((64, 64, 10), "relu", seed=0)
    ns["train"](model, X, y, 0.5, 20, 32, seed=0)
    _, _, X_ev, y_ev = ref_mlp.load_digits_task(1)
    layers = [[W.value, b.value] for W, b in model.layers]
    acc = float(np.mean(np.argmax(mlp_net.mlp_forward(layers, X_ev, "relu"), axis=-1) == y_ev))
    assert acc < 0.3  # pasted weights are near chance on the grader's task
