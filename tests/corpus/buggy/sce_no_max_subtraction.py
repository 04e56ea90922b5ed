"""SoftmaxCrossEntropy: softmax straight from the definition, exp(z) / sum(exp(z)).

No row maximum subtracted: a logit of 1000 gives exp(1000) = inf and inf / inf = NaN.
"""
EXPECT = {"diagnosis": "non_finite", "component": "SoftmaxCrossEntropy", "graphs": []}

import numpy as np

from reference.core import CompNode


class SoftmaxCrossEntropy(CompNode):
    def __init__(self, logits, labels):
        super().__init__()
        self.logits, self.labels = logits, labels

    def forward(self):
        e = np.exp(self.logits.value)
        self.p = e / e.sum(axis=-1, keepdims=True)
        rows = np.arange(len(self.p))
        self.value = np.asarray(-np.log(self.p[rows, self.labels.value.astype(int)]).mean())

    def backward(self):
        n = len(self.p)
        delta = self.p.copy()
        delta[np.arange(n), self.labels.value.astype(int)] -= 1
        self.logits.grad += self.grad * delta / n
