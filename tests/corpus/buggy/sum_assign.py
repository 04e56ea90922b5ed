"""Sum: ``self.x.grad = self.grad * np.ones_like(self.x.value)``.

Assignment instead of accumulation: a node summed and also used elsewhere loses
the other contribution.
"""
EXPECT = {"diagnosis": "assign_not_accumulate", "component": "Sum", "graphs": []}

import numpy as np

from reference.core import CompNode


class Sum(CompNode):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        self.value = np.asarray(np.sum(self.x.value))

    def backward(self):
        self.x.grad = self.grad * np.ones_like(self.x.value)
