"""ReLU with ``np.where`` forward and ``np.heaviside`` (0 at the kink) backward."""
import numpy as np

from reference.core import CompNode


class ReLU(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.where(self.x.value > 0, self.x.value, 0.0)

    def backward(self):
        self.x.grad += self.grad * np.heaviside(self.x.value, 0.0)
