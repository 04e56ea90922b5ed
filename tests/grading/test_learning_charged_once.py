"""The accuracy test charges only its own errors (issue: every bug charged once).

Its learning case trains a fresh network with the student's build_mlp + train (+ train_step).
A bug in one of those functions is charged on that function's own test; the learning case
then passes with a note, provided the notebook's predict case passes and correct functions
learn the task with the student's final_settings. Settings too weak to learn, and a predict
that is not the trained network (a lazy or off-task notebook), still lose the points.
"""
from __future__ import annotations

import numpy as np
import pytest

from grader.checks import hidden
from reference import mlp as ref_mlp

from test_mlp_seeds import FINAL_SETTINGS, notebook

SIGN_FLIP = '''
def train_step(model, X, y, eta):
    model.x.set(X)
    model.labels.set(y)
    Forward()
    Backward(model.loss)
    SGD(-eta)
    return float(model.loss.value)
'''

STUB_BUILD = '''
def build_mlp(sizes, activation="relu", seed=0, dtype=np.float64):
    raise NotImplementedError()
'''

NOOP_BUILD = '''
def build_mlp(sizes, activation="relu", seed=0, dtype=np.float64):
    pass
'''

# builds the right graph, returns something else: the final network is in the graph, but
# final_model is not it
RETURNS_ZEROS = '''
_build_mlp = build_mlp
def build_mlp(sizes, activation="relu", seed=0, dtype=np.float64):
    _build_mlp(sizes, activation, seed, dtype)
    return np.zeros(3)
'''

# the layers' Add(VDot(h, W), b) dropped: a graph whose logits do not depend on the weights
NO_LAYERS = '''
def build_mlp(sizes, activation="relu", seed=0, dtype=np.float64):
    clear_compgraph()
    rng = np.random.default_rng(seed)
    x, labels = Input(), Input()
    h, layers = x, []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = Parameter(rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out)).astype(dtype))
        b = Parameter(np.zeros(n_out, dtype=dtype))
        layers.append((W, b))
        if i < len(sizes) - 2:
            h = ACTIVATIONS[activation](h)
    return MLP(x, labels, h, SoftmaxCrossEntropy(h, labels), layers)
'''

NOOP_TRAIN = '''
def train(model, X, y, eta, epochs, batch_size=32, seed=0, X_val=None, y_val=None):
    return []
'''

TEST = {"id": "accuracy", "check": "mlp_accuracy", "target": "predict", "assignment": "mlp_training",
        "hidden": {"seed": 1, "target": 0.94}}


def finished(settings=FINAL_SETTINGS, predict="model", **cells) -> dict:
    """A notebook with ``cells`` on top of the reference, its final network built last (not
    trained: the final case sets its own weights) and ``predict`` as the student wrote it."""
    ns = notebook(**cells)
    ns["final_settings"] = dict(settings)
    ns["final_model"] = ns["build_mlp"](settings["sizes"], settings["activation"], seed=0)
    X, y, _, _ = ref_mlp.load_digits_split(0)
    if predict == "model":
        exec("def predict(X):\n    return final_model.predict(X)\n", ns)
    else:  # off-task: the nearest training digit's label, whatever the network says
        ns["predict"] = lambda Xq: y[np.argmin(((Xq[:, None, :] - X[None]) ** 2).sum(-1), axis=1)]
    return ns


def grade(ns):
    return hidden.run_hidden(ns, TEST)


def test_the_reference_passes_without_a_note():
    r = grade(finished())
    assert r.passed and r.score == 1.0
    assert "charged on their own tests" not in r.message


@pytest.mark.parametrize("cells", [{"step": SIGN_FLIP}, {"train": NOOP_TRAIN}, {"build": NOOP_BUILD},
                                   {"build": RETURNS_ZEROS}, {"build": NO_LAYERS}],
                         ids=["sign_flip", "noop_train", "noop_build", "returns_zeros", "no_layers"])
def test_a_bug_in_a_function_with_its_own_test_is_not_charged_again(cells):
    r = grade(finished(**cells))
    assert r.passed and r.score == 1.0, r.message
    assert "charged on their own tests only" in r.message  # the student is told where the fault is
    assert "your trained network failed" in r.message


def test_settings_too_weak_to_learn_are_the_tests_own_error():
    weak = dict(FINAL_SETTINGS, eta=1e-4, epochs=1)
    r = grade(finished(settings=weak))
    assert not r.passed and r.score == 0.5, r.message  # the predict case passes, learning fails
    # and a buggy function does not excuse settings that would not learn anyway
    r = grade(finished(settings=weak, step=SIGN_FLIP))
    assert not r.passed and r.score == 0.5, r.message


def test_a_predict_that_is_not_the_trained_network_is_never_excused():
    r = grade(finished(predict="nearest", step=SIGN_FLIP))
    assert r.score == 0.0, r.message


def test_a_predict_that_ignores_final_model_is_judged_on_the_graph_it_uses():
    """With build_mlp broken there is no final network: predict is judged on the harness's
    network bound as final_model; a predict that uses another name fails (no network to follow)."""
    ns = finished(build=NOOP_BUILD)
    ns["net"] = ns.pop("final_model")
    exec("def predict(X):\n    return net.predict(X)\n", ns)
    r = grade(ns)
    assert r.score == 0.0, r.message


SKLEARN_FINAL = """
from sklearn.linear_model import LogisticRegression
final_model = LogisticRegression(max_iter=200).fit(X_train, y_train)
def predict(X):
    return final_model.predict(X)
"""


def test_another_classifier_named_final_model_is_not_replaced():
    """Off-task: an sklearn model as final_model, build_mlp broken (not the stub): predict is never
    judged on the harness's network in its place, so nothing is excused."""
    ns = finished(build=NOOP_BUILD)
    X, y, _, _ = ref_mlp.load_digits_split(0)
    ns.update(X_train=X, y_train=y)
    exec(SKLEARN_FINAL, ns)
    assert grade(ns).score == 0.0


def test_a_function_left_undone_excuses_nothing():
    """build_mlp left as released (NotImplementedError): the final network cannot run, so
    predict is not judged on the harness's network and the learning case is not excused."""
    ns = notebook(build=STUB_BUILD)
    ns["final_settings"] = dict(FINAL_SETTINGS)
    exec("def predict(X):\n    return final_model.predict(X)\n", ns)
    r = grade(ns)
    assert r.score == 0.0, r.message
    assert "left undone" in r.message or "NotImplementedError" in r.message
