"""SoftmaxCrossEntropy: the max subtracted in place, "to save a copy".

``z = self.logits.value; z -= z.max(...)`` shifts the logits node's own value.
The loss is right (softmax is shift-invariant); the graph's logits are not.
"""
EXPECT = {"diagnosis": "operand_mutated", "component": "SoftmaxCrossEntropy", "graphs": ["mlp2"]}

import numpy as np

from reference.core import CompNode


class SoftmaxCrossEntropy(CompNode):
    def __init__(self, logits, labels):
        super().__init__()
        self.logits, self.labels = logits, labels

    def forward(self):
        z = self.logits.value
        z -= z.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        self.p = np.exp(log_p)
        rows = np.arange(len(z))
        self.value = np.asarray(-log_p[rows, self.labels.value.astype(int)].mean())

    def backward(self):
        n = len(self.p)
        delta = self.p.copy()
        delta[np.arange(n), self.labels.value.astype(int)] -= 1
        self.logits.grad += self.grad * delta / n
