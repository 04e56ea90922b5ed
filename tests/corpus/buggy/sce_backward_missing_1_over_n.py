"""SoftmaxCrossEntropy: "the gradient of cross-entropy is p - y".

True per example; the forward averages over the batch but the backward forgets
the 1/N.
"""
EXPECT = {"diagnosis": "wrong_factor", "component": "SoftmaxCrossEntropy", "graphs": ["mlp2"]}

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
        delta = self.p.copy()
        delta[np.arange(len(delta)), self.labels.value.astype(int)] -= 1
        self.logits.grad += self.grad * delta
