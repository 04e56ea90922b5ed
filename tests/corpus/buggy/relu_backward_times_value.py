"""ReLU: "the gradient passes where the unit is active", multiplied by the activation.

x_bar = v_bar * relu(x) instead of v_bar * [x > 0].
"""
EXPECT = {"diagnosis": "wrong_gradient", "component": "ReLU", "graphs": ["relu_affine", "mlp2"]}

import numpy as np

from reference.core import CompNode


class ReLU(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.maximum(self.x.value, 0)

    def backward(self):
        self.x.grad += self.grad * self.value
