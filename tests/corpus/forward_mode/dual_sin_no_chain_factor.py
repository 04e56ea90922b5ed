"""Dual.sin: "the derivative of sin is cos", without the inner derivative u'."""
EXPECT = {"diagnosis": "chain_rule_factor", "component": "Dual.sin", "test": "dual_sin"}

import math

from reference.forward_mode import Dual as GivenDual


class Dual(GivenDual):
    def sin(self):
        return Dual(math.sin(self.val), math.cos(self.val))
