"""SoftmaxCrossEntropy: the loss summed over the batch ("total loss") instead of averaged.

The forward value is N times the contract's; the backward matches the sum.
"""
EXPECT = {"diagnosis": "forward_wrong", "component": "SoftmaxCrossEntropy", "graphs": ["mlp2"]}

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
        self.value = np.asarray(-log_p[rows, self.labels.value.astype(int)].sum())

    def backward(self):
        delta = self.p.copy()
        delta[np.arange(len(delta)), self.labels.value.astype(int)] -= 1
        self.logits.grad += self.grad * delta
