"""ReLU: backward passes the upstream gradient through unchanged, "like the identity".

Right wherever x > 0, wrong wherever x < 0: every case holds both signs, so it fails every case.
"""
EXPECT = {"diagnosis": "wrong_gradient", "component": "ReLU", "graphs": []}

import numpy as np

from reference.core import CompNode


class ReLU(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.maximum(self.x.value, 0)

    def backward(self):
        self.x.grad += self.grad
