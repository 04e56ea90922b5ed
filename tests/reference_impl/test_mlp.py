"""The reference MLP trains on the scikit-learn digits to the course's target."""
import numpy as np

import reference as R
from reference.mlp import build_mlp, load_digits_split, train_mlp


def test_mlp_reaches_095_test_accuracy_with_its_fixed_seed():
    model, history = train_mlp(seed=0)
    assert history[-1]["test_acc"] >= 0.95
    assert history[-1]["loss"] < history[0]["loss"]
    X_tr, y_tr, X_te, y_te = load_digits_split(seed=0)
    assert model.accuracy(X_te, y_te) == history[-1]["test_acc"]


def test_digits_split_is_fixed_and_disjoint():
    a, b = load_digits_split(seed=0), load_digits_split(seed=0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    X_tr, _, X_te, _ = a
    assert len(X_tr) + len(X_te) == 1797 and len(X_te) == 360


def test_layers_keep_float32_when_asked():
    model = build_mlp((64, 16, 10), dtype=np.float32)
    rng = np.random.default_rng(0)
    model.x.set(rng.normal(size=(8, 64)).astype(np.float32))
    model.labels.set(rng.integers(0, 10, size=8))
    R.Forward()
    R.Backward(model.loss)
    W, b = model.layers[0]
    assert model.logits.value.dtype == np.float32 and W.grad.dtype == np.float32
