"""Add accumulating with ``np.add(grad, g, out=grad)``; broadcast axes summed by its own helper."""
import numpy as np

from reference.core import CompNode


def sum_to_shape(g, shape):
    """Sum g over the axes NumPy broadcast to reach g.shape from shape."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1)
    return g.sum(axis=axes).reshape(shape)


class Add(CompNode):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self):
        self.value = self.a.value + self.b.value

    def backward(self):
        np.add(self.a.grad, sum_to_shape(self.grad, np.shape(self.a.value)), out=self.a.grad)
        np.add(self.b.grad, sum_to_shape(self.grad, np.shape(self.b.value)), out=self.b.grad)
