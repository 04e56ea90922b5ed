"""Checks that judge one unit alone, in one process (the reference pulled by name, run as
notebook cells): ``train`` on a stand-in model and ``train_step`` (typical mistakes in its
history and batching caught with their own message, whatever the student's other functions
do); the notebook's ``predict`` with a stand-in ``MLP.predict``; conv_edf's learning case on
the reference over several hidden seeds, and a training that bypasses ``SGD`` earning nothing."""
from __future__ import annotations

import inspect
import textwrap

import numpy as np
import pytest

import reference
from grader.checks import hidden
from grader.checks.mlp_net import check_mlp
from grader.checks.public import probe
from reference import cnn as ref_cnn
from reference import conv as ref_conv

from test_mlp_seeds import FINAL_SETTINGS, notebook  # noqa: E402 (tests/grading is on sys.path)

BROKEN = '''
def train_step(model, X, y, eta):
    raise NotImplementedError()

def build_mlp(sizes, activation="relu", seed=0, dtype=np.float64):
    raise NotImplementedError()
'''
VAL_BEFORE_EPOCH = '''
def train(model, X, y, eta, epochs, batch_size=32, seed=0, X_val=None, y_val=None):
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch}
        if X_val is not None:
            record["val_acc"] = model.accuracy(X_val, y_val)
        order = rng.permutation(len(X))
        losses = [train_step(model, X[r], y[r], eta) for r in np.array_split(order, max(1, len(X) // batch_size))]
        record["loss"] = float(np.mean(losses))
        history.append(record)
    return history
'''
NO_VAL = VAL_BEFORE_EPOCH.replace('            record["val_acc"] = model.accuracy(X_val, y_val)\n', '            pass\n')
FIXED_BATCHES = '''
def train(model, X, y, eta, epochs, batch_size=32, seed=0, X_val=None, y_val=None):
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(X))
        losses = [train_step(model, X[order[i:i + batch_size]], y[order[i:i + batch_size]], eta)
                  for i in range(0, len(X) - batch_size + 1, batch_size)]
        record = {"epoch": epoch, "loss": float(np.mean(losses))}
        if X_val is not None:
            record["val_acc"] = model.accuracy(X_val, y_val)
        history.append(record)
    return history
'''


def _train_result(**cells):
    ns = notebook(**cells)
    return [hidden.run_hidden(ns, {"id": "train", "check": "mlp_train", "assignment": "mlp_training",
                                   "hidden": {"seed": seed}}) for seed in (1, 2, 3)]


def test_train_is_not_charged_for_train_step_or_build_mlp():
    assert all(r.passed for r in _train_result(broken=BROKEN))


@pytest.mark.parametrize("source, score, words", [
    (VAL_BEFORE_EPOCH, 0.5, "before that epoch's steps"),
    (NO_VAL, 0.5, "no 'val_acc'"),
    (FIXED_BATCHES, 0.0, "batches"),  # drops the remainder; with fewer rows than a batch, no batch at all
])
def test_train_mistakes_lose_points_in_their_regime_with_their_message(source, score, words):
    for r in _train_result(train=source):
        assert r.score == pytest.approx(score) and words in r.message, r.message


def test_the_notebooks_predict_is_judged_with_a_correct_mlp_predict():
    ns = notebook(predict_stub="MLP.predict = lambda self, X: np.zeros(len(X), dtype=int)\n")
    ns["final_settings"] = dict(FINAL_SETTINGS)
    model = ns["build_mlp"](FINAL_SETTINGS["sizes"], "relu", seed=0)
    ns["predict"] = lambda X: model.predict(X)
    spec = hidden.mlp_learning_specs({"seed": 1})[1]
    assert hidden.judge_case({"id": "accuracy", "check": "mlp_accuracy"}, spec, probe(ns, spec)).passed
    assert not check_mlp(ns, "mlp_predict", seed=1).passed  # MLP.predict's own test charges it
    ns["predict"] = lambda X: np.zeros(len(X), dtype=int)  # a predict that ignores the network
    assert not hidden.judge_case({"id": "accuracy", "check": "mlp_accuracy"}, spec, probe(ns, spec)).passed


def _conv_notebook(**cells) -> dict:
    ns = {name: getattr(reference, name) for name in reference.__all__}
    ns.update(np=np, __name__=ref_cnn.__name__)  # @dataclass looks it up
    exec("from dataclasses import dataclass\nfrom numpy.lib.stride_tricks import sliding_window_view\n", ns)
    for mod, names in ((ref_conv, ("output_size", "windows", "im2col", "col2im", "Conv2D", "MaxPool2D", "Flatten")),
                       (ref_cnn, ("as_images", "CNN", "build_cnn", "train_cnn_epoch"))):
        for name in names:
            exec(textwrap.dedent(inspect.getsource(getattr(mod, name))), ns)
    for source in cells.values():
        exec(source, ns)
    return ns


CONV_TEST = {"id": "accuracy", "check": "mlp_accuracy", "assignment": "conv_edf", "target": "predict",
             "hidden": {"model": "cnn", "target": 0.94, "filters": 16, "epochs": 8, "eta": 0.3, "batch_size": 32}}


def _conv_learning(ns, seed):
    spec = hidden.cnn_learning_specs({**CONV_TEST["hidden"], "seed": seed})[0]
    return hidden.judge_case(CONV_TEST, spec, probe(ns, spec))


def test_conv_reference_learns_the_redrawn_image_task_on_5_hidden_seeds():
    ns = _conv_notebook()
    for seed in range(5):
        r = _conv_learning(ns, seed)
        assert r.passed and r.details["accuracy"] >= 0.95, (seed, r.message)


def test_conv_training_that_bypasses_sgd_earns_nothing():
    bypass = textwrap.dedent(inspect.getsource(ref_cnn.train_cnn_epoch)).replace(
        "SGD(eta)", "[setattr(p, 'value', p.value - eta * p.grad) for p in model.params]")
    r = _conv_learning(_conv_notebook(epoch=bypass), 1)
    assert not r.passed and r.diagnosis == "outside_sgd", r.message
