"""SoftmaxCrossEntropy: "it is always the loss, so its grad is 1".

The backward never multiplies by ``self.grad``; a weighted loss (``Mul(c, loss)``)
or a sum of two losses gets the wrong gradient.
"""
EXPECT = {"diagnosis": "upstream_ignored", "component": "SoftmaxCrossEntropy", "graphs": []}

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
        delta = self.p.copy()
        delta[np.arange(n), self.labels.value.astype(int)] -= 1
        self.logits.grad += delta / n
