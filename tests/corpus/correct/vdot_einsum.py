"""VDot with ``np.einsum`` for the forward and both Jacobian contractions (batch rows flattened for W_bar)."""
import numpy as np

from reference.core import CompNode


class VDot(CompNode):
    def __init__(self, x, W):
        super().__init__()
        self.x, self.W = x, W

    def forward(self):
        self.value = np.einsum("...i,io->...o", self.x.value, self.W.value)

    def backward(self):
        self.x.grad += np.einsum("...o,io->...i", self.grad, self.W.value)
        I, O = self.W.value.shape
        x, g = self.x.value.reshape(-1, I), self.grad.reshape(-1, O)
        self.W.grad += np.einsum("ni,no->io", x, g)
