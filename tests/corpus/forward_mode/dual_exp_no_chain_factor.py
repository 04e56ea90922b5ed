"""Dual.exp: "exp is its own derivative", so the dot is exp(u) alone."""
EXPECT = {"diagnosis": "chain_rule_factor", "component": "Dual.exp", "test": "dual_exp"}

import math

from reference.forward_mode import Dual as GivenDual


class Dual(GivenDual):
    def exp(self):
        e = math.exp(self.val)
        return Dual(e, e)
