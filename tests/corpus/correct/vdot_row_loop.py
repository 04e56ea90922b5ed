"""VDot one example at a time: a loop over rows, W_bar accumulated as a sum of outer products."""
import numpy as np

from reference.core import CompNode


class VDot(CompNode):
    def __init__(self, x, W):
        super().__init__()
        self.x, self.W = x, W

    def forward(self):
        self.value = self.x.value @ self.W.value

    def backward(self):
        x = np.atleast_2d(self.x.value)
        g = np.atleast_2d(self.grad)
        for xi, gi in zip(x, g):
            self.W.grad += np.outer(xi, gi)
        self.x.grad += (g @ self.W.value.T).reshape(self.x.value.shape)
