"""SoftmaxCrossEntropy with an explicit one-hot matrix: -sum(onehot * log_softmax) / N."""
import numpy as np

from reference.core import CompNode


class SoftmaxCrossEntropy(CompNode):
    def __init__(self, logits, labels):
        super().__init__()
        self.logits, self.labels = logits, labels

    def forward(self):
        z = self.logits.value
        n, c = z.shape
        self.onehot = np.eye(c)[self.labels.value.astype(int)]
        shifted = z - z.max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        self.softmax = np.exp(log_softmax)
        self.value = np.asarray(-np.sum(self.onehot * log_softmax) / n)

    def backward(self):
        n = len(self.onehot)
        self.logits.grad += self.grad * (self.softmax - self.onehot) / n
