"""Log: "log is decreasing-ish, the derivative is -1/x" (mixed up with d/dx of 1/x).

x_bar = -v_bar / x.
"""
EXPECT = {"diagnosis": "sign_error", "component": "Log", "graphs": ["random_log"]}

import numpy as np

from reference.core import CompNode


class Log(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.log(self.x.value)

    def backward(self):
        self.x.grad += -self.grad / self.x.value
