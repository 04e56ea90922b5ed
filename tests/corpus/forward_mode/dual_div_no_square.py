"""Dual.__truediv__: the quotient rule divided by v instead of v squared."""
EXPECT = {"diagnosis": "quotient_rule", "component": "Dual.__truediv__", "test": "dual_div"}

from reference.forward_mode import Dual as GivenDual


class Dual(GivenDual):
    def __truediv__(self, other):
        o = Dual.lift(other)
        return Dual(self.val / o.val, (self.dot * o.val - self.val * o.dot) / o.val)

    def __rtruediv__(self, other):
        return Dual.lift(other) / self
