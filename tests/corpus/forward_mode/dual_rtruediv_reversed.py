"""Dual.__rtruediv__: ``1 / d`` computed as d / 1, the reflected operator taken literally."""
EXPECT = {"diagnosis": "reflected_reversed", "component": "Dual.__rtruediv__", "test": "dual_div"}

from reference.forward_mode import Dual as GivenDual


class Dual(GivenDual):
    def __rtruediv__(self, other):
        return self / Dual.lift(other)
