"""ReLU: ``np.max(x, 0)`` instead of ``np.maximum(x, 0)``.

``np.max`` reduces along axis 0 (the column maxima), so the value has the wrong
shape and the wrong numbers for any batch.
"""
EXPECT = {"diagnosis": "forward_wrong", "component": "ReLU", "graphs": ["mlp2"]}

import numpy as np

from reference.core import CompNode


class ReLU(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.max(self.x.value, 0)

    def backward(self):
        self.x.grad += self.grad * (self.x.value > 0)
