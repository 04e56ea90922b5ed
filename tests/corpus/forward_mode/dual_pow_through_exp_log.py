"""Dual.__pow__: u ** n written as exp(n log u), "because the derivative is then just the
chain rule". Right for a positive base, a math domain error for a negative one."""
EXPECT = {"diagnosis": "power_rule", "component": "Dual.__pow__", "test": "dual_pow"}

import math

from reference.forward_mode import Dual as GivenDual


class Dual(GivenDual):
    def __pow__(self, n):
        v = math.exp(n * math.log(self.val))
        return Dual(v, n * v / self.val * self.dot)
