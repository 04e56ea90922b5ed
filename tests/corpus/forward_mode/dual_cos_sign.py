"""Dual.cos: the derivative of cos taken as +sin."""
EXPECT = {"diagnosis": "dot_sign_error", "component": "Dual.cos", "test": "dual_cos"}

import math

from reference.forward_mode import Dual as GivenDual


class Dual(GivenDual):
    def cos(self):
        return Dual(math.cos(self.val), math.sin(self.val) * self.dot)
