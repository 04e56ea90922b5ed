"""ReLU: "the gradient of max(0, x) is mostly zero anyway", so backward does nothing.

Right wherever x < 0, wrong wherever x > 0: every case holds both signs, so it fails every case.
"""
EXPECT = {"diagnosis": "wrong_gradient", "component": "ReLU", "graphs": ["relu_affine"]}

import numpy as np

from reference.core import CompNode


class ReLU(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.maximum(self.x.value, 0)

    def backward(self):
        pass
