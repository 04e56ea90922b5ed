"""ReLU: the class is called ``Relu`` ("that's how PyTorch's functional spells it... no").

The notebook never defines ``ReLU``; every test that uses it fails.
"""
EXPECT = {"diagnosis": "missing", "component": "ReLU", "graphs": ["relu_affine"]}

import numpy as np

from reference.core import CompNode


class Relu(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.maximum(self.x.value, 0)

    def backward(self):
        self.x.grad += self.grad * (self.x.value > 0)
