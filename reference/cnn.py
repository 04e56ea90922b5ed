"""A small convolutional network on the 8x8 handwritten digits, built from EDF components.

Conv2D (3x3, padding 1) -> ReLU -> MaxPool2D (2x2) -> Flatten -> Add(VDot(h, W), b)
-> SoftmaxCrossEntropy, trained with minibatch SGD. The images are the rows of
``load_digits_split`` reshaped to (N, 1, 8, 8); nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv import Conv2D, Flatten, MaxPool2D
from .core import Backward, Forward, Input, Parameter, SGD, clear_compgraph
from .operations import Add, ReLU, SoftmaxCrossEntropy, VDot


def as_images(X) -> np.ndarray:
    """Rows of 64 pixels as a batch of one-channel 8x8 images (N, 1, 8, 8)."""
    return np.asarray(X).reshape(len(X), 1, 8, 8)


def load_image_task(seed: int, n_eval: int = 360):
    """A re-drawn digits task for grading, as images: (X_train, y_train, X_eval, y_eval).

    A seeded split; the images rotated by a multiple of 90 degrees and maybe mirrored, and the
    10 label names permuted, by the same seed. A convolutional network learns it as well as the
    original task (the pixels keep their neighbours); weights or answers prepared for the
    original digits do not fit it.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng([seed, 2027])
    X = np.rot90(as_images(digits.data.astype(np.float64) / 16.0), int(rng.integers(4)), axes=(2, 3))
    if rng.integers(2):
        X = X[..., ::-1]
    X = np.ascontiguousarray(X)
    y = rng.permutation(10)[digits.target].astype(np.int64)
    order = rng.permutation(len(X))
    held, train = order[:n_eval], order[n_eval:]
    return X[train], y[train], X[held], y[held]


@dataclass
class CNN:
    """The graph of one network: its input, label input, logits and loss nodes, parameters."""

    x: Input
    labels: Input
    logits: object
    loss: object
    params: list

    def predict(self, X) -> np.ndarray:
        """Predicted classes for images (N, 1, 8, 8), in batches (dummy labels for the loss)."""
        out = []
        for rows in np.array_split(np.arange(len(X)), max(1, len(X) // 256)):
            self.x.set(X[rows])
            self.labels.set(np.zeros(len(rows), dtype=np.int64))
            Forward()
            out.append(self.logits.value.argmax(axis=-1))
        return np.concatenate(out)

    def accuracy(self, X, y) -> float:
        return float(np.mean(self.predict(X) == y))


def build_cnn(filters: int = 16, seed: int = 0) -> CNN:
    """A fresh graph: conv 3x3 (1 -> filters, padding 1), ReLU, 2x2 max-pool, linear to 10.

    Weights are He-initialised (std sqrt(2 / fan_in)), biases zero.
    """
    clear_compgraph()
    rng = np.random.default_rng(seed)
    x, labels = Input(), Input()
    K = Parameter(rng.normal(0.0, np.sqrt(2.0 / 9), (filters, 1, 3, 3)))
    c = Parameter(np.zeros(filters))
    h = Flatten(MaxPool2D(ReLU(Conv2D(x, K, c, stride=1, padding=1)), size=2, stride=2))
    n_in = filters * 4 * 4
    W = Parameter(rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, 10)))
    b = Parameter(np.zeros(10))
    logits = Add(VDot(h, W), b)
    return CNN(x, labels, logits, SoftmaxCrossEntropy(logits, labels), [K, c, W, b])


def train_cnn_epoch(model: CNN, X, y, eta: float, batch_size: int, rng) -> float:
    """One epoch of minibatch SGD in a random order; returns the mean batch loss."""
    losses = []
    order = rng.permutation(len(X))
    for rows in np.array_split(order, max(1, len(X) // batch_size)):
        model.x.set(X[rows])
        model.labels.set(y[rows])
        Forward()
        Backward(model.loss)
        SGD(eta)
        losses.append(float(model.loss.value))
    return float(np.mean(losses))


def train_cnn(X, y, filters: int = 16, eta: float = 0.2, epochs: int = 15, batch_size: int = 32,
              seed: int = 0, X_val=None, y_val=None, log=None):
    """Build a CNN and train it on images X (N, 1, 8, 8); returns (model, history).

    ``history`` holds one dict per epoch: "epoch", "loss" and, with validation data,
    "val_acc". ``log``, if given, is called with each record as it is produced.
    """
    model = build_cnn(filters, seed)
    rng = np.random.default_rng(seed + 1)
    history = []
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch, "loss": train_cnn_epoch(model, X, y, eta, batch_size, rng)}
        if X_val is not None:
            record["val_acc"] = model.accuracy(X_val, y_val)
        history.append(record)
        if log:
            log(record)
    return model, history
