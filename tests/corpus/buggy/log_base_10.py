"""Log: ``np.log10`` because "log means base 10 on my calculator".

The forward value is off by a factor ln(10); backward is the natural-log one.
"""
EXPECT = {"diagnosis": "forward_wrong", "component": "Log", "graphs": ["random_log"]}

import numpy as np

from reference.core import CompNode


class Log(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.log10(self.x.value)

    def backward(self):
        self.x.grad += self.grad / self.x.value
