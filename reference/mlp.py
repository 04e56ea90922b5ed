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


def load_digits_task(seed: int, n_eval: int = 360):
    """A re-drawn digits task, for grading: (X_train, y_train, X_eval, y_eval).

    A seeded split, with the 64 pixels and the 10 label names permuted by the same seed.
    A fully connected network learns it exactly as well as the original task; weights or
    answers prepared for the original digits do not fit it.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng([seed, 2026])
    X = digits.data.astype(np.float64)[:, rng.permutation(digits.data.shape[1])] / 16.0
    y = rng.permutation(10)[digits.target].astype(np.int64)
    order = rng.permutation(len(X))
    held, train = order[:n_eval], order[n_eval:]
    return X[train], y[train], X[held], y[held]


@dataclass
class MLP:
    """The graph of one network: its input, label input, logits and loss nodes."""

    x: Input
    labels: Input
    logits: object
    loss: object
    layers: list = field(default_factory=list)  # (W, b) Parameters per layer

    def predict(self, X) -> np.ndarray:
        """The class of each row of X (an int array of shape (N,)): the argmax of the logits of
        a Forward() with the current weights (the loss is computed on dummy labels)."""
        self.x.set(X)
        self.labels.set(np.zeros(len(X), dtype=np.int64))
        Forward()
        return self.logits.value.argmax(axis=-1)

    def accuracy(self, X, y) -> float:
        """The fraction of rows of X whose predicted class equals y, as a float."""
        return float(np.mean(self.predict(X) == y))


def build_mlp(sizes, activation: str = "relu", seed: int = 0, dtype=np.float64) -> MLP:
    """A fresh graph for an MLP with layer widths ``sizes`` (input first, classes last).

    One generator ``np.random.default_rng(seed)`` draws the weights layer by layer:
    W_l ~ Normal(0, sqrt(2 / d_{l-1})) of shape (d_{l-1}, d_l) (He initialisation), b_l = 0.
    Every layer but the last is followed by ``ACTIVATIONS[activation]``; the last gives the
    logits. Values have ``dtype`` (float64 unless asked otherwise).
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
    """One minibatch SGD step: set the batch, Forward, Backward, SGD(eta).

    Returns the batch's loss before the update, as a float.
    """
    model.x.set(X)
    model.labels.set(y)
    Forward()
    Backward(model.loss)
    SGD(eta)
    return float(model.loss.value)


def train(model: MLP, X, y, eta: float, epochs: int, batch_size: int = 32, seed: int = 0,
          X_val=None, y_val=None) -> list:
    """Minibatch SGD on (X, y) for `epochs` epochs; returns one record (a dict) per epoch.

    One generator ``rng = np.random.default_rng(seed)``, made once, draws each epoch's order
    ``rng.permutation(len(X))``, cut into ``max(1, len(X) // batch_size)`` consecutive
    batches by ``np.array_split``; ``train_step`` runs on each batch in turn. A record holds
    "epoch" (counting from 1), "loss" (the mean of the epoch's batch losses) and, when
    validation data is given, "val_acc" (the accuracy on X_val after the epoch).
    """
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(X))
        batches = np.array_split(order, max(1, len(X) // batch_size))
        losses = [train_step(model, X[rows], y[rows], eta) for rows in batches]
        record = {"epoch": epoch, "loss": float(np.mean(losses))}
        if X_val is not None:
            record["val_acc"] = model.accuracy(X_val, y_val)
        history.append(record)
    return history


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
