"""Dual.__mul__: the product rule with one term, "the derivative of u times v is u' v"."""
EXPECT = {"diagnosis": "product_rule_term", "component": "Dual.__mul__", "test": "dual_mul"}

from reference.forward_mode import Dual as GivenDual


class Dual(GivenDual):
    def __mul__(self, other):
        o = Dual.lift(other)
        return Dual(self.val * o.val, self.dot * o.val)

    __rmul__ = __mul__
