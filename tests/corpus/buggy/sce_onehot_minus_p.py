"""SoftmaxCrossEntropy: logits_bar = (onehot - p) / N, "target minus prediction".

That is the direction to move in (minus the gradient): the sign is flipped.
"""
EXPECT = {"diagnosis": "sign_error", "component": "SoftmaxCrossEntropy", "graphs": ["mlp2"]}

import numpy as np

from reference.core import CompNode


class SoftmaxCrossEntropy(CompNode):
    def __init__(self, logits, labels):
        super().__init__()
        self.logits, self.labels = logits, labels

    def forward(self):
        z = self.logits.value - self.logits.value.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        self.p = np.exp(log_p)
        rows = np.arange(len(z))
        self.value = np.asarray(-log_p[rows, self.labels.value.astype(int)].mean())

    def backward(self):
        n = len(self.p)
        onehot = np.zeros_like(self.p)
        onehot[np.arange(n), self.labels.value.astype(int)] = 1
        self.logits.grad += self.grad * (onehot - self.p) / n
