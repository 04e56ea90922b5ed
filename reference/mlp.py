"""A multilayer perceptron on the 8x8 handwritten digits, built from EDF components.

Each layer is ``Add(VDot(h, W), b)`` (v = W^T h + b for every row of the batch),
followed by ReLU or tanh; the loss is ``SoftmaxCrossEntropy``; training is
minibatch ``SGD``. The data set ships inside scikit-learn: nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .core import Backward, Forward, Input, Parameter, SGD, clear_compgraph
from .operations import Add, ReLU, SoftmaxCrossEntropy, Tanh, VDot

# region activations
ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}
# endregion


def load_digits_split(seed: int = 0, n_test: int = 360):
    """(X_train, y_train, X_test, y_test): pixels scaled to [0, 1], a seeded shuffle."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(X))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


@dataclass
class MLP:
    """The graph of one network: its input, label input, logits and loss nodes."""

    x: Input
    labels: Input
    logits: object
    loss: object
    layers: list = field(default_factory=list)  # (W, b) Parameters per layer

    def predict(self, X) -> np.ndarray:
        """Class predictions: argmax of the logits (the loss is computed on dummy labels)."""
        self.x.set(X)
        self.labels.set(np.zeros(len(X), dtype=np.int64))
        Forward()
        return self.logits.value.argmax(axis=-1)

    def accuracy(self, X, y) -> float:
        return float(np.mean(self.predict(X) == y))


def build_mlp(sizes, activation: str = "relu", seed: int = 0, dtype=np.float64) -> MLP:
    """A fresh graph for an MLP with layer widths ``sizes`` (input first, classes last).

    Weights are He-initialised (std sqrt(2 / fan_in)), biases zero.
    """
    clear_compgraph()
    rng = np.random.default_rng(seed)
    x, labels = Input(), Input()
    h, layers = x, []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = Parameter(rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out)).astype(dtype))
        b = Parameter(np.zeros(n_out, dtype=dtype))
        layers.append((W, b))
        h = Add(VDot(h, W), b)
        if i < len(sizes) - 2:
            h = ACTIVATIONS[activation](h)
    loss = SoftmaxCrossEntropy(h, labels)
    return MLP(x, labels, h, loss, layers)


def train_step(model: MLP, X, y, eta: float) -> float:
    """One minibatch: Forward, Backward, SGD. Returns the batch loss."""
    model.x.set(X)
    model.labels.set(y)
    Forward()
    Backward(model.loss)
    SGD(eta)
    return float(model.loss.value)


def train_mlp(hidden=(64,), activation="relu", eta=0.5, epochs=25, batch_size=32,
              seed=0, log=None):
    """Train on the digits split; returns (model, history).

    ``history`` holds one dict per epoch: mean training loss, train and test accuracy.
    ``log``, if given, is called with each of those dicts as it is produced.
    """
    X_tr, y_tr, X_te, y_te = load_digits_split(seed)
    model = build_mlp((X_tr.shape[1], *hidden, 10), activation, seed)
    rng = np.random.default_rng(seed + 1)
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(X_tr))
        losses = [train_step(model, X_tr[idx], y_tr[idx], eta)
                  for idx in np.array_split(order, max(1, len(order) // batch_size))]
        record = {"epoch": epoch, "loss": float(np.mean(losses)),
                  "train_acc": model.accuracy(X_tr, y_tr), "test_acc": model.accuracy(X_te, y_te)}
        history.append(record)
        if log:
            log(record)
    return model, history
