"""SoftmaxCrossEntropy: a stable softmax, then ``-np.log(p[label])``.

The student subtracted the max ("so exp can't overflow") but takes the log of the
probability instead of using log-softmax: when the label's logit is far below the
maximum, p underflows to 0 and the loss is log(0) = -inf -> inf.
"""
EXPECT = {"diagnosis": "non_finite", "component": "SoftmaxCrossEntropy", "graphs": []}

import numpy as np

from reference.core import CompNode


class SoftmaxCrossEntropy(CompNode):
    def __init__(self, logits, labels):
        super().__init__()
        self.logits, self.labels = logits, labels

    def forward(self):
        z = self.logits.value - self.logits.value.max(axis=-1, keepdims=True)
        e = np.exp(z)
        self.p = e / e.sum(axis=-1, keepdims=True)
        rows = np.arange(len(z))
        self.value = np.asarray(-np.log(self.p[rows, self.labels.value.astype(int)]).mean())

    def backward(self):
        n = len(self.p)
        delta = self.p.copy()
        delta[np.arange(n), self.labels.value.astype(int)] -= 1
        self.logits.grad += self.grad * delta / n
